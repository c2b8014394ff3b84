// WebSocket load generator for the tunnel bench, run as its own process on the load CPU.
// Raw sockets and one prebuilt masked frame, so the measuring side stays cheap. Modes:
//   saturate  N connections, one message in flight each (closed loop): messages/s and RTT
//   latency   one connection, one message at a time: RTT without load
//   idle      opens N tunnels (handshakes, at most 50 at once), prints {"opened": N}, holds them
//             until SIGTERM
// The origin echoes bytes, so each answer is the frame sent, byte for byte.
//
//   node bench/lib/ws-load.ts --port P --mode saturate --connections 50 --duration 4 --warmup 1
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string' },
    mode: { type: 'string', default: 'saturate' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    size: { type: 'string', default: '64' },
  },
});
const port = Number(opt.port);

/** A masked text frame (client to server) with a payload of `size` bytes (< 126). */
function frame(size: number): Buffer {
  const mask = randomBytes(4);
  const payload = Buffer.alloc(size, 0x78);
  for (let i = 0; i < size; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([Buffer.from([0x81, 0x80 | size]), mask, payload]);
}

/** Connects and completes the opening handshake; resolves with the socket once the 101 is in. */
function open(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`no 101: ${head.slice(0, 80)}`));
      else resolve(s);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(
      `GET /ws HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Closed loop over `sockets`: each sends the frame, waits for its echo, sends again. */
async function loop(sockets: net.Socket[], durationS: number, warmupS: number): Promise<object> {
  const msg = frame(Number(opt.size));
  const t0 = performance.now();
  const measureFrom = t0 + warmupS * 1000;
  const end = measureFrom + durationS * 1000;
  const rtts: number[] = [];
  let done = 0;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          let pending = 0;
          let sent = 0;
          const send = () => {
            sent = performance.now();
            s.write(msg);
          };
          s.on('data', (d: Buffer) => {
            pending += d.length;
            while (pending >= msg.length) {
              pending -= msg.length;
              const now = performance.now();
              if (now >= measureFrom && now < end) {
                done++;
                rtts.push(now - sent);
              }
              if (now < end) send();
              else {
                s.destroy();
                resolve();
                return;
              }
            }
          });
          s.on('error', () => resolve());
          send();
        }),
    ),
  );
  const sorted = Float64Array.from(rtts).sort();
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    messagesPerSec: Math.round(done / durationS),
    messages: done,
    rttMs: {
      p50: round(percentile(sorted, 50)),
      p99: round(percentile(sorted, 99)),
      max: round(sorted.at(-1) ?? 0),
    },
  };
}

async function openMany(n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(50, n) }, async () => {
      while (next < n) {
        next++;
        out.push(await open());
      }
    }),
  );
  return out;
}

async function main(): Promise<void> {
  const mode = opt.mode;
  if (mode === 'idle') {
    const sockets = await openMany(Number(opt.connections));
    for (const s of sockets) s.on('error', () => {});
    process.stdout.write(`${JSON.stringify({ opened: sockets.length })}\n`);
    await new Promise((resolve) => process.once('SIGTERM', resolve));
    for (const s of sockets) s.destroy();
    return;
  }
  const n = mode === 'latency' ? 1 : Number(opt.connections);
  const sockets = await openMany(n);
  const result = await loop(sockets, Number(opt.duration), Number(opt.warmup));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`ws-load: ${e.message}\n`);
    process.exit(1);
  },
);
