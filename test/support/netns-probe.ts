/**
 * Script for {@link runInNetns}: plain `net.connect` to each target, concurrently, and
 * print one JSON object `{ [id]: { code, errno?, ms } }` on stdout. `code` is the
 * error code, `'connected'`, or `'timeout'` when nothing happened within `timeoutMs`.
 *
 * Usage: `node netns-probe.ts '<json array of {id, host, port, timeoutMs?}>'`
 * (also an example of a script run inside the namespace).
 */
import net from 'node:net';
import process from 'node:process';

export interface ProbeTarget {
  id: string;
  host: string;
  port: number;
  timeoutMs?: number;
}

export interface ProbeResult {
  code: string;
  errno?: number;
  ms: number;
}

function probe(t: ProbeTarget): Promise<ProbeResult> {
  const start = performance.now();
  const ms = () => Math.round(performance.now() - start);
  return new Promise((resolve) => {
    const s = net.connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ code: 'timeout', ms: ms() });
    }, t.timeoutMs ?? 300);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ code: 'connected', ms: ms() });
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({
        code: err.code ?? err.message,
        ...(err.errno !== undefined ? { errno: err.errno } : {}),
        ms: ms(),
      });
    });
  });
}

const targets = JSON.parse(process.argv[2] ?? '[]') as ProbeTarget[];
const results = await Promise.all(targets.slice(0, 100).map(async (t) => [t.id, await probe(t)] as const));
process.stdout.write(`${JSON.stringify(Object.fromEntries(results))}\n`);
