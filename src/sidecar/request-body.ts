// Request bodies on their way to the origin. A small body is received completely
// before the request is sent (spec.request.bodyBufferBytes), so a client that
// sends it a byte at a time holds no origin connection meanwhile; the memory for
// it comes from one budget per sidecar, and a body that does not fit (larger, or
// the budget in use) is streamed. Either way the body's errors are the client's
// (ClientBodyError), never the origin's.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { BodyTooLargeError, ClientBodyError } from './errors.ts';

/** Bytes of request bodies the whole sidecar may hold at once. */
export class BodyBudget {
  readonly total: number;
  #used = 0;

  constructor(total: number) {
    this.total = total;
  }

  get used(): number {
    return this.#used;
  }

  take(n: number): boolean {
    if (this.#used + n > this.total) return false;
    this.#used += n;
    return true;
  }

  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}

/** Gives `n` bytes back to the budget once, however often the request's end is reported. */
function releaser(budget: BodyBudget, n: () => number): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    budget.give(n());
  };
}

export interface BodyLimits {
  /** Largest body received before forwarding (0: stream every body). */
  readonly bufferBytes: number;
  /** Largest body accepted at all (413 past it). */
  readonly maxBytes: number;
  readonly budget: BodyBudget;
}

export type PreparedBody =
  | { readonly kind: 'none' }
  | { readonly kind: 'buffered'; readonly body: Buffer; readonly release: () => void }
  | { readonly kind: 'stream'; readonly body: Readable; readonly release: () => void }
  /** The client went away, or stopped, before its body was complete. */
  | { readonly kind: 'gone' }
  /** A body without Content-Length grew past maxBytes. */
  | { readonly kind: 'too-large' };

/** The request's body as a stream: counts bytes against maxBytes and makes the client's failures ClientBodyError. */
class ClientBody extends Readable {
  readonly #req: IncomingMessage;

  constructor(req: IncomingMessage, maxBytes: number, received: readonly Buffer[], seen: number) {
    super();
    this.#req = req;
    for (const chunk of received) this.push(chunk);
    let total = seen;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) this.destroy(new BodyTooLargeError(maxBytes));
      else if (!this.push(chunk)) req.pause();
    });
    req.once('end', () => this.push(null));
    const broke = () => {
      if (!req.complete) this.destroy(new ClientBodyError());
    };
    req.once('error', broke);
    req.once('close', broke);
    if (req.complete && req.readableEnded) this.push(null);
  }

  override _read(): void {
    this.#req.resume();
  }
}

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function stream(req: IncomingMessage, limits: BodyLimits, received: Buffer[] = [], seen = 0, held = 0) {
  return {
    kind: 'stream' as const,
    body: new ClientBody(req, limits.maxBytes, received, seen),
    release: releaser(limits.budget, () => held),
  };
}

/** Receives the body within the budget; switches to streaming once it no longer fits. */
function receive(
  req: IncomingMessage,
  limits: BodyLimits,
  declared: number | undefined,
): Promise<PreparedBody> {
  const { budget } = limits;
  let held = declared ?? 0;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (result: PreparedBody) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onBroken);
      req.off('close', onBroken);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) {
        budget.give(held);
        stop({ kind: 'too-large' });
        return;
      }
      if (declared === undefined && !(size <= limits.bufferBytes && budget.take(chunk.length))) {
        req.pause();
        chunks.push(chunk);
        stop(stream(req, limits, chunks, size, held));
        return;
      }
      if (declared === undefined) held += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () =>
      stop({ kind: 'buffered', body: Buffer.concat(chunks, size), release: releaser(budget, () => held) });
    const onBroken = () => {
      if (req.complete) return;
      budget.give(held);
      stop({ kind: 'gone' });
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onBroken);
    req.once('close', onBroken);
  });
}

/**
 * The body to forward: received first when it is small and the budget has room,
 * else a stream. Synchronous unless the body is being received.
 */
export function prepareBody(req: IncomingMessage, limits: BodyLimits): PreparedBody | Promise<PreparedBody> {
  if (!hasBody(req)) return { kind: 'none' };
  const length = req.headers['content-length'];
  const declared =
    req.headers['transfer-encoding'] === undefined && length !== undefined ? Number(length) : undefined;
  if (limits.bufferBytes === 0) return stream(req, limits);
  if (declared !== undefined && (declared > limits.bufferBytes || !limits.budget.take(declared)))
    return stream(req, limits);
  return receive(req, limits, declared);
}
