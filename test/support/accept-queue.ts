/**
 * A loopback listener whose accept queue is full, so that every further SYN is
 * dropped: a real connect timeout on 127.0.0.1, without root.
 *
 * How: a child Node process (`process.execPath`, inline script) listens on
 * 127.0.0.1:0 with `backlog` (default 1), prints its port, then blocks its only
 * thread in `Atomics.wait` so it never calls accept(). The parent then opens
 * connections until one gets no SYN-ACK within `fillTimeoutMs` and a fresh
 * `net.connect` then stays unanswered for `verifyMs` (bounded by `maxFill`
 * attempts), and keeps the completed ones open.
 *
 * Observed on Linux 6.18 (tcp_syncookies=1): listen(fd, 1) completes exactly
 * backlog + 1 = 2 connections (backlog 2 → 3, backlog 4 → 5; setup takes ~0.6 s);
 * the next SYN and every later one is silently dropped (the kernel drops a SYN while
 * the accept queue is full; the research notes found the same with syncookies 0 and 2).
 * Node cannot listen with backlog 0: `listen({backlog: 0})` falls back to 511.
 * A client then sees:
 *  - undici: UND_ERR_CONNECT_TIMEOUT (ConnectTimeoutError) via undici:client:connectError,
 *    after its connect timeout (coarse: 200, 300 and 900 ms all fired at ~1000 ms here);
 *  - net.connect alone: nothing until ETIMEDOUT after tcp_syn_retries (127 s by default).
 * A client that gives up just aborts its SYN_SENT socket: nothing is left behind on
 * the listener, so one handle serves any number of timeouts.
 *
 * The child exits by itself after `maxLifetimeMs` (default 120 s) even if `close()`
 * is never called; `close()` kills it (SIGKILL, by pid) and destroys the held sockets.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

export interface FullAcceptQueueOptions {
  /** listen() backlog of the child. Default 1. */
  backlog?: number;
  /** Upper bound of connections opened to fill the queue. Default 16. */
  maxFill?: number;
  /** A fill connection not established within this is taken as dropped. Default 200 ms. */
  fillTimeoutMs?: number;
  /** How long a probe must stay unanswered to prove the queue full. Default 300 ms. */
  verifyMs?: number;
  /** The child exits on its own after this. Default 120 000 ms. */
  maxLifetimeMs?: number;
}

export interface FullAcceptQueueHandle {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly url: string;
  /** Connections that completed the handshake and sit in the accept queue (held open). */
  readonly held: number;
  /** pid of the child that owns the listener. */
  readonly pid: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const CHILD = `
const net = require('node:net');
const fs = require('node:fs');
const [backlog, lifetime] = process.argv.slice(1).map(Number);
const server = net.createServer();
server.listen({ port: 0, host: '127.0.0.1', backlog }, () => {
  fs.writeSync(1, server.address().port + '\\n');
  // Block the only thread: libuv never gets to accept(). Bounded by the lifetime.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, lifetime);
  process.exit(0);
});
`;

/** A connected socket, `'timeout'` when no SYN-ACK came within `ms`, or the connect error. */
function connectWithin(port: number, ms: number): Promise<net.Socket | 'timeout' | Error> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, ms);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(t);
      s.destroy();
      resolve(err);
    });
  });
}

/** Starts the listener, fills its accept queue and verifies that a further SYN goes unanswered. */
export async function startFullAcceptQueue(
  opts: FullAcceptQueueOptions = {},
): Promise<FullAcceptQueueHandle> {
  const backlog = opts.backlog ?? 1;
  const maxFill = opts.maxFill ?? 16;
  const fillTimeoutMs = opts.fillTimeoutMs ?? 200;
  const verifyMs = opts.verifyMs ?? 300;
  const child = spawn(
    process.execPath,
    ['-e', CHILD, String(backlog), String(opts.maxLifetimeMs ?? 120_000)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const held: net.Socket[] = [];
  let exited = false;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  const close = async (): Promise<void> => {
    for (const s of held) s.destroy();
    if (!exited) child.kill('SIGKILL');
    await exitedP;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const t = setTimeout(
        () => reject(new Error('accept-queue child did not report its port in 5 s')),
        5000,
      );
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m?.[1] !== undefined) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`accept-queue child exited early (${code})`));
      });
    });
    // Fill until a connect stays unanswered for verifyMs. A fill connect that merely
    // looked slow (a stalled event loop) but then completes is kept and filling goes on.
    let full = false;
    for (let i = 0; i < maxFill && !full; i++) {
      const s = await connectWithin(port, fillTimeoutMs);
      if (s instanceof Error) throw new Error(`filling the accept queue: ${s.message}`);
      if (s !== 'timeout') {
        held.push(s);
        continue;
      }
      const probe = await connectWithin(port, verifyMs);
      if (probe instanceof Error) throw new Error(`verifying the full accept queue: ${probe.message}`);
      if (probe === 'timeout') full = true;
      else held.push(probe);
    }
    if (!full) throw new Error(`accept queue not full after ${held.length} connections (maxFill ${maxFill})`);
    return {
      host: '127.0.0.1',
      port,
      url: `http://127.0.0.1:${port}`,
      held: held.length,
      pid: child.pid ?? -1,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
