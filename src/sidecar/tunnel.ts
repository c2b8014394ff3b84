// An upgraded connection after the origin's 101: a raw tunnel of bytes both
// ways, never re-framed, with no buffering beyond the two sockets' own
// (backpressure pauses the side that sends too fast). Either side closing or
// resetting closes or resets the other; timeouts.streamIdle closes a tunnel
// silent both ways. At shutdown a WebSocket gets a Close frame 1001 (Going
// Away) each way, put between two frames, so clients reconnect elsewhere.

import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TunnelMetrics } from './metrics.ts';
import { closeFrame, FrameBoundaries, GOING_AWAY } from './websocket-frames.ts';

/** How long a closing tunnel may take to flush before its sockets are destroyed. */
const CLOSE_FLUSH_MS = 2000;

/** Errors that say the peer reset its connection: passed on as a reset, not a clean close. */
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

export interface TunnelOptions {
  readonly client: Duplex;
  readonly origin: Duplex;
  /** Bytes the client sent after its request headers, before the switch: the tunnel's first bytes. */
  readonly head: Buffer;
  /** The protocol switched to is WebSocket: frame boundaries are followed for the Close at shutdown. */
  readonly websocket: boolean;
  readonly idleMs: number;
  readonly metrics: TunnelMetrics;
}

/** One direction of a tunnel: from one socket to the other. */
class Direction {
  bytes = 0;
  flushed = 0;
  readonly from: Duplex;
  readonly to: Duplex;
  readonly frames: FrameBoundaries | undefined;
  /** A Close frame to put at the next frame boundary; then nothing more goes this way. */
  #pendingClose: Buffer | undefined;
  sealed = false;

  constructor(from: Duplex, to: Duplex, websocket: boolean) {
    this.from = from;
    this.to = to;
    this.frames = websocket ? new FrameBoundaries() : undefined;
  }

  /** Forwards a chunk, unless a Close went out this way (then it is dropped, as RFC 6455 §5.5.1 wants). */
  carry(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.sealed) return;
    if (this.#pendingClose !== undefined && this.frames !== undefined) {
      const n = this.frames.advance(chunk, true);
      if (this.frames.atBoundary) {
        if (n > 0) this.to.write(chunk.subarray(0, n));
        this.#writeClose();
        return;
      }
      this.#write(chunk);
      return;
    }
    this.frames?.advance(chunk);
    this.#write(chunk);
  }

  #write(chunk: Buffer): void {
    if (!this.to.write(chunk)) this.from.pause();
  }

  /** Seals this direction with a Close frame, at once or at the end of the frame in flight. */
  closeWith(frame: Buffer): void {
    if (this.sealed || this.frames === undefined) return;
    // The sender already closed this way: a second Close would be a protocol error.
    if (this.frames.closeSeen) {
      this.sealed = true;
      return;
    }
    this.#pendingClose = frame;
    if (this.frames.atBoundary) this.#writeClose();
  }

  #writeClose(): void {
    this.to.write(this.#pendingClose as Buffer);
    this.#pendingClose = undefined;
    this.sealed = true;
  }
}

export class Tunnel {
  readonly #client: Duplex;
  readonly #origin: Duplex;
  readonly #up: Direction;
  readonly #down: Direction;
  readonly #metrics: TunnelMetrics;
  readonly #idleMs: number;
  #idleTimer: NodeJS.Timeout | undefined;
  #lastActivity = performance.now();
  #closed = false;
  readonly #done: Promise<void>;
  #resolveDone: () => void = () => {};

  constructor(o: TunnelOptions) {
    this.#client = o.client;
    this.#origin = o.origin;
    this.#metrics = o.metrics;
    this.#idleMs = o.idleMs;
    this.#up = new Direction(o.client, o.origin, o.websocket);
    this.#down = new Direction(o.origin, o.client, o.websocket);
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    o.metrics.open.inc();
    o.metrics.live.add(this);
    for (const d of [this.#up, this.#down]) {
      d.from.on('data', (chunk: Buffer) => {
        this.#lastActivity = performance.now();
        d.carry(chunk);
      });
      d.to.on('drain', () => d.from.resume());
      // A half-close is passed on; the other direction may go on.
      d.from.on('end', () => d.to.end());
      d.from.on('error', (err: NodeJS.ErrnoException) => this.#onError(d.to, err));
      d.from.on('close', () => this.#onClose(d.to));
    }
    (o.client as { setTimeout?: (ms: number) => void }).setTimeout?.(0);
    (o.client as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    if (o.head.length > 0) this.#up.carry(o.head);
    this.#armIdle();
    if (o.client.destroyed || o.origin.destroyed) this.#onClose(o.client.destroyed ? o.origin : o.client);
  }

  /** Resolves once both sockets are closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Adds the bytes carried since the last call to the counters (at each scrape and at the end). */
  flushBytes(): void {
    this.#metrics.clientToOrigin.inc(this.#up.bytes - this.#up.flushed);
    this.#up.flushed = this.#up.bytes;
    this.#metrics.originToClient.inc(this.#down.bytes - this.#down.flushed);
    this.#down.flushed = this.#down.bytes;
  }

  /**
   * Shutdown: a WebSocket gets a Close 1001 each way (to the origin masked, as a
   * client's frames are), each at a frame boundary; other tunnels are closed.
   */
  goAway(): void {
    if (this.#closed) return;
    if (this.#down.frames === undefined) {
      this.#endBoth();
      return;
    }
    this.#down.closeWith(closeFrame(GOING_AWAY, 'proxy shutting down'));
    this.#up.closeWith(closeFrame(GOING_AWAY, 'proxy shutting down', randomBytes(4)));
    // An origin stalled in the middle of a frame cannot hold the shutdown.
    const check = setInterval(() => {
      if (this.#closed) clearInterval(check);
      else if (this.#down.sealed && this.#up.sealed) {
        clearInterval(check);
        this.#endBoth();
      }
    }, 10);
    setTimeout(() => {
      clearInterval(check);
      this.#endBoth();
    }, CLOSE_FLUSH_MS).unref();
  }

  #armIdle(): void {
    const left = this.#lastActivity + this.#idleMs - performance.now();
    this.#idleTimer = setTimeout(
      () => {
        if (this.#closed) return;
        if (this.#lastActivity + this.#idleMs - performance.now() > 1) this.#armIdle();
        else {
          this.#metrics.idleCloses.inc();
          this.#endBoth();
        }
      },
      Math.max(1, left),
    );
  }

  /** Ends both sockets once what was written is flushed, and destroys them after a bound. */
  #endBoth(): void {
    for (const s of [this.#client, this.#origin]) {
      if (s.destroyed) continue;
      s.end(() => s.destroy());
      setTimeout(() => s.destroy(), CLOSE_FLUSH_MS).unref();
    }
  }

  #onError(other: Duplex, err: NodeJS.ErrnoException): void {
    if (other.destroyed) return;
    const reset = (other as { resetAndDestroy?: () => void }).resetAndDestroy;
    if (err.code !== undefined && RESETS.has(err.code) && reset !== undefined) reset.call(other);
    else other.destroy();
  }

  #onClose(other: Duplex): void {
    if (!other.destroyed) other.end(() => other.destroy());
    if (!(this.#client.destroyed && this.#origin.destroyed) || this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.flushBytes();
    this.#metrics.live.delete(this);
    this.#metrics.open.dec();
    this.#resolveDone();
  }
}

/** The open tunnels of a sidecar, for shutdown. */
export class TunnelSet {
  readonly #open = new Set<Tunnel>();

  add(t: Tunnel): void {
    this.#open.add(t);
    void t.done.then(() => this.#open.delete(t));
  }

  get size(): number {
    return this.#open.size;
  }

  /** Resolves when no tunnel is open. */
  async closed(): Promise<void> {
    while (this.#open.size > 0) await Promise.all([...this.#open].map((t) => t.done));
  }

  /** Sends every tunnel away (see Tunnel.goAway) and resolves once all are closed. */
  async goAway(): Promise<void> {
    for (const t of this.#open) t.goAway();
    await this.closed();
  }
}
