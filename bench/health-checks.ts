// What active health checks cost: the built sidecar (dist/originguard.mjs,
// standalone) serving 100 Origins with no traffic, its checks on, side by side
// with the same sidecar and Origins with checks off (the peer). For each setting
// it reports the sidecar's CPU (user+system over the window) and resident memory
// (median of one reading a second),
// and what the origin receives: connections and requests per second, against the
// formula pods × Origins ÷ interval (one pod here).
//
//   npm run bench:checks                 (npm run build && node bench/health-checks.ts)
//   node bench/health-checks.ts --window 20 --origins 100
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../hack/net.ts';
import { metricsAt } from '../hack/prom-text.ts';
import { groupCpuSeconds, groupRss, start, stop, stopAll } from './lib/processes.ts';

const root = new URL('../', import.meta.url).pathname;
const { values: flags } = parseArgs({
  options: {
    window: { type: 'string', default: '30' },
    origins: { type: 'string', default: '100' },
    out: { type: 'string', default: join(root, 'bench/results/health-checks.md') },
  },
});
const windowS = Number(flags.window);
const count = Number(flags.origins);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setting {
  readonly name: string;
  /** spec.healthCheck of every Origin. */
  readonly healthCheck: Record<string, unknown>;
  /** Checks per second the formula gives (one pod): Origins ÷ interval. */
  readonly expected: number;
}

const SETTINGS: Setting[] = [
  { name: 'checks off (peer)', healthCheck: { enabled: false }, expected: 0 },
  { name: 'default: connect-only, every 10s', healthCheck: {}, expected: count / 10 },
  { name: 'GET /healthz, every 10s', healthCheck: { path: '/healthz' }, expected: count / 10 },
  { name: 'connect-only, every 1s', healthCheck: { interval: '1s', timeout: '500ms' }, expected: count },
];

/** The origin every Origin points at: counts connections and requests. */
async function startOrigin() {
  const counts = { connections: 0, requests: 0 };
  const server = createServer((_req, res) => {
    counts.requests++;
    res.end('ok\n');
  });
  server.on('connection', () => counts.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** 100 Origins on one listen port, told apart by Host, all pointing at the origin. */
function config(listen: number, originPort: number, healthCheck: Record<string, unknown>): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      apiVersion: 'edge.originguard.dev/v1alpha1',
      kind: 'Origin',
      metadata: { name: `shop-${i}`, namespace: 'bench' },
      spec: {
        selector: { matchLabels: { app: 'edge' } },
        listen: { port: listen, address: '127.0.0.1' },
        hosts: [`shop-${i}.bench.test`],
        upstream: { host: '127.0.0.1', port: originPort },
        healthCheck,
      },
    }),
  ).join('\n---\n');
}

interface Result {
  readonly setting: Setting;
  readonly cpuPercent: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly connectionsPerS: number;
  readonly requestsPerS: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** The V8 heap in use, from the sidecar's own /metrics (prom-client's default metrics). */
async function heapUsedMb(admin: number): Promise<number> {
  const heap = (await metricsAt(admin)).find((m) => m.name === 'originguard_nodejs_heap_size_used_bytes');
  return (heap?.value ?? Number.NaN) / 2 ** 20;
}

async function measure(setting: Setting, dir: string): Promise<Result> {
  const origin = await startOrigin();
  const listen = await freePort();
  const admin = await freePort();
  const file = join(dir, 'origins.yaml');
  await writeFile(file, config(listen, origin.port, setting.healthCheck));
  const sidecar = start('sidecar', process.execPath, [
    join(root, 'dist/originguard.mjs'),
    'sidecar',
    '--config',
    file,
    `--admin-port=${admin}`,
    '--admin-address=127.0.0.1',
    '--log-level=warn',
  ]);
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${admin}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 400) throw new Error(`sidecar not ready: ${sidecar.output()}`);
      await sleep(25);
    }
    // One interval for the first checks to spread (they start at random points of it).
    await sleep(setting.expected === count ? 1_000 : 10_000);
    const cpu0 = groupCpuSeconds(sidecar.pid);
    const c0 = { ...origin.counts };
    const t0 = performance.now();
    // RSS once a second over the window, and its median: one reading depends on when V8 last collected.
    const rss: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < windowS; i++) {
      await sleep(1000);
      rss.push(groupRss(sidecar.pid) / 2 ** 20);
      heap.push(await heapUsedMb(admin));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = groupCpuSeconds(sidecar.pid) - cpu0;
    return {
      setting,
      cpuPercent: (100 * cpu) / seconds,
      rssMb: median(rss),
      heapMb: median(heap),
      connectionsPerS: (origin.counts.connections - c0.connections) / seconds,
      requestsPerS: (origin.counts.requests - c0.requests) / seconds,
    };
  } finally {
    await stop(sidecar);
    await origin.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), 'og-checks-'));
try {
  const results: Result[] = [];
  for (const s of SETTINGS) {
    process.stderr.write(`measuring: ${s.name} (${windowS} s)...\n`);
    results.push(await measure(s, dir));
  }
  const [peer] = results;
  const lines = [
    `# Active health checks: cost for ${count} Origins (one sidecar, no traffic)`,
    '',
    `Measured ${new Date().toISOString()} by \`node bench/health-checks.ts --window ${windowS} --origins ${count}\` on the built bundle; ${windowS} s per setting after the checks spread over one interval. CPU is user+system time of the sidecar process over the window; the V8 heap in use (the sidecar's own originguard_nodejs_heap_size_used_bytes) and RSS are medians of one reading a second over it; RSS moves by ±15 MB between runs with when V8 collects, so the heap is the one to compare. The origin counts what reaches it. Formula: checks/s = pods × Origins ÷ interval (here one pod).`,
    '',
    '| setting | sidecar CPU | vs peer | V8 heap used | vs peer | RSS | origin connections/s | origin requests/s | formula checks/s |',
    '|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      const cpuDelta = r.cpuPercent - (peer?.cpuPercent ?? 0);
      const heapDelta = r.heapMb - (peer?.heapMb ?? 0);
      return `| ${r.setting.name} | ${r.cpuPercent.toFixed(2)} % of a core | ${r === peer ? '-' : `${cpuDelta >= 0 ? '+' : ''}${cpuDelta.toFixed(2)} pts`} | ${r.heapMb.toFixed(1)} MB | ${r === peer ? '-' : `${heapDelta >= 0 ? '+' : ''}${heapDelta.toFixed(1)} MB`} | ${r.rssMb.toFixed(1)} MB | ${r.connectionsPerS.toFixed(1)} | ${r.requestsPerS.toFixed(1)} | ${r.setting.expected.toFixed(1)} |`;
    }),
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  await writeFile(flags.out, text);
} finally {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
}
