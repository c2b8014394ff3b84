// The hostile client: writes raw bytes to the proxy, in parts with pauses when a
// case says so (slow clients), and collects every byte of the answer, split into
// responses (1xx included).
import net from 'node:net';
import { header, type Message, splitMessages, statusOf } from './wire.ts';

/** A part of what the client sends: bytes, a pause, a wait until the answer so far matches, or its end (FIN). */
export type Part =
  | string
  | { readonly pauseMs: number }
  | { readonly waitFor: RegExp }
  | { readonly end: true };

export interface Exchange {
  /** Everything the proxy sent back (latin1). */
  readonly bytes: string;
  readonly responses: readonly Message[];
  /** The proxy closed the connection. */
  readonly closed: boolean;
  /** performance.now() when the client wrote its last byte. */
  readonly lastWriteAt: number;
}

export interface ExchangeOptions {
  /** Final responses a correct proxy gives; once they are in, wait only `settleMs` more. */
  readonly finals: number;
  /** Methods of the requests sent, in order (a response to HEAD has no body). */
  readonly methods?: readonly string[];
  readonly settleMs?: number;
  /** Give up this long after the last byte was sent or received. */
  readonly quietMs?: number;
  readonly maxMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function exchange(port: number, parts: readonly Part[], opts: ExchangeOptions): Promise<Exchange> {
  const settleMs = opts.settleMs ?? 40;
  const quietMs = opts.quietMs ?? 600;
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let bytes = '';
    let closed = false;
    let sending = true;
    let lastWriteAt = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const started = performance.now();
    const parsed = () => splitMessages(bytes, 'response', closed, opts.methods).messages;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ bytes, responses: parsed(), closed, lastWriteAt });
    };
    const schedule = () => {
      if (sending) return;
      clearTimeout(timer);
      const responses = parsed().filter((m) => !(statusOf(m) < 200));
      const left =
        opts.maxMs === undefined ? quietMs : Math.min(quietMs, opts.maxMs - (performance.now() - started));
      // A last answer that announces the connection's end is complete only with it: wait for the close.
      const closing = /close/i.test(header(responses.at(-1) ?? { headers: [] }, 'connection') ?? '');
      const done = responses.length >= opts.finals && !closing;
      timer = setTimeout(finish, done ? settleMs : Math.max(0, left));
    };
    let onData: (() => void) | undefined;
    socket.on('data', (d: Buffer) => {
      bytes += d.toString('latin1');
      onData?.();
      schedule();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      sending = false;
      finish();
    });
    // Resolves when the answer so far matches, or after quietMs without it.
    const waitFor = (pattern: RegExp) =>
      new Promise<void>((resolve) => {
        const give = setTimeout(check, quietMs, true);
        function check(giveUp = false) {
          if (!giveUp && !pattern.test(bytes) && !closed) return;
          clearTimeout(give);
          onData = undefined;
          resolve();
        }
        onData = check;
        check();
      });
    const send = async () => {
      for (const part of parts) {
        if (closed) return;
        if (typeof part === 'string') {
          socket.write(Buffer.from(part, 'latin1'));
          lastWriteAt = performance.now();
        } else if ('pauseMs' in part) {
          await sleep(part.pauseMs);
        } else if ('end' in part) {
          socket.end();
        } else {
          await waitFor(part.waitFor);
        }
      }
      sending = false;
      schedule();
    };
    socket.once('connect', () => void send());
  });
}
