// The WebSocket part of the bench: direct, nginx (configured for upgrades) and originguard
// side by side against the same echo origin, in interleaved rounds. Messages per second and
// round trips at saturation, the round trip of a single connection, and the memory each proxy
// takes per idle open tunnel (RSS delta with 1,000 tunnels held open).
import { join } from 'node:path';
import { nginxWsProxy } from './nginx.ts';
import { groupCpuSeconds, groupRss, runToEnd, type Started, start, stop } from './processes.ts';
import { mb, medianBy } from './report.ts';
import { type BenchContext, freePort, LOAD_CPU, PROXY_CPU, pollUntil, startOriginguard } from './subjects.ts';

export type WsPathId = 'direct' | 'nginx' | 'originguard';

export interface WsLoad {
  messagesPerSec: number;
  messages: number;
  rttMs: { p50: number; p99: number; max: number };
}

export interface WsPathResult {
  id: WsPathId;
  label: string;
  skipped?: string;
  /** Median round at saturation, with the proxy's CPU use (cores) during it. */
  saturation?: WsLoad & { proxyCores: number };
  /** One connection, one message at a time (median round). */
  latency?: WsLoad;
  idle?: { tunnels: number; rssBeforeMb: number; rssAfterMb: number; perTunnelKb: number };
  rounds?: { messagesPerSec: number[]; latencyP99Ms: number[] };
}

export interface WsOptions {
  readonly rounds: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly idleTunnels: number;
}

const PATHS: readonly { id: WsPathId; label: string }[] = [
  { id: 'direct', label: 'direct to origin' },
  { id: 'nginx', label: 'nginx' },
  { id: 'originguard', label: 'originguard' },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ok = (status: number) => status === 200;

interface Live {
  result: WsPathResult;
  port: number;
  proc?: Started;
  saturations: (WsLoad & { proxyCores: number })[];
  latencies: WsLoad[];
}

/** Runs bench/lib/ws-load.ts on the load CPU and parses its JSON line. */
async function wsLoad(ctx: BenchContext, port: number, args: string[], boundS: number): Promise<WsLoad> {
  const script = join(ctx.root, 'bench/lib/ws-load.ts');
  const argv = [script, '--port', String(port), ...args];
  return JSON.parse(
    await runToEnd('ws-load', process.execPath, argv, { cpu: LOAD_CPU }, boundS * 1000),
  ) as WsLoad;
}

async function startPath(ctx: BenchContext, id: WsPathId, originPort: number): Promise<Live> {
  const result: WsPathResult = { id, label: PATHS.find((p) => p.id === id)?.label ?? id };
  let port = originPort;
  let proc: Started | undefined;
  if (id === 'nginx') {
    port = await freePort();
    proc = start('nginx ws proxy', 'nginx', nginxWsProxy(ctx.dir, port, originPort), { cpu: PROXY_CPU });
  } else if (id === 'originguard') {
    const run = await startOriginguard(ctx, 'originguard-ws', { host: '127.0.0.1', port: originPort });
    port = run.port;
    proc = run.proc;
  }
  await pollUntil(port, '/', ok, performance.now(), 10_000, proc);
  return { result, port, ...(proc === undefined ? {} : { proc }), saturations: [], latencies: [] };
}

async function round(ctx: BenchContext, l: Live, o: WsOptions, first: boolean): Promise<void> {
  const common = ['--duration', String(o.durationS), '--warmup', String(first ? o.warmupS : 0.2)];
  const cpu0 = l.proc ? groupCpuSeconds(l.proc.pid) : 0;
  const t0 = performance.now();
  const sat = await wsLoad(
    ctx,
    l.port,
    ['--mode', 'saturate', '--connections', String(o.connections), ...common],
    o.durationS + o.warmupS + 30,
  );
  const wall = (performance.now() - t0) / 1000;
  const proxyCores = l.proc ? Math.round(((groupCpuSeconds(l.proc.pid) - cpu0) / wall) * 100) / 100 : 0;
  l.saturations.push({ ...sat, proxyCores });
  await sleep(300);
  l.latencies.push(await wsLoad(ctx, l.port, ['--mode', 'latency', ...common], o.durationS + o.warmupS + 30));
  await sleep(300);
}

/**
 * RSS of the proxy's process group with `n` idle tunnels held open, against its RSS before
 * (after a first batch of tunnels was opened and closed, so code paths are warm).
 */
async function idleTunnels(ctx: BenchContext, l: Live, n: number): Promise<WsPathResult['idle']> {
  if (!l.proc) return undefined;
  const script = join(ctx.root, 'bench/lib/ws-load.ts');
  const hold = async (count: number): Promise<Started> => {
    const p = start(
      'ws-idle',
      process.execPath,
      [script, '--port', String(l.port), '--mode', 'idle', '--connections', String(count)],
      {
        cpu: LOAD_CPU,
      },
    );
    const until = performance.now() + 60_000;
    while (!p.stdout().includes('"opened"')) {
      if (p.exitStatus() !== undefined || performance.now() > until) {
        await stop(p);
        throw new Error(`opening ${count} tunnels failed: ${p.output()}`);
      }
      await sleep(50);
    }
    return p;
  };
  await stop(await hold(100));
  await sleep(1500);
  const before = groupRss(l.proc.pid);
  const p = await hold(n);
  try {
    await sleep(2000);
    const after = groupRss(l.proc.pid);
    return {
      tunnels: n,
      rssBeforeMb: mb(before),
      rssAfterMb: mb(after),
      perTunnelKb: Math.round(((after - before) / n / 1024) * 10) / 10,
    };
  } finally {
    await stop(p);
  }
}

/** Measures the path's idle tunnels and keeps its median rounds. */
async function finish(
  ctx: BenchContext,
  l: Live,
  o: WsOptions,
  log: (s: string) => void,
): Promise<WsPathResult> {
  log(`bench: websocket: ${o.idleTunnels} idle tunnels through ${l.result.label}`);
  try {
    const idle = await idleTunnels(ctx, l, o.idleTunnels);
    if (idle) l.result.idle = idle;
  } catch (e) {
    log(`bench:   ${(e as Error).message}`);
  }
  const sat = medianBy(l.saturations, (s) => s.messagesPerSec);
  const lat = medianBy(l.latencies, (s) => s.rttMs.p99);
  if (sat) l.result.saturation = sat;
  if (lat) l.result.latency = lat;
  l.result.rounds = {
    messagesPerSec: l.saturations.map((s) => s.messagesPerSec),
    latencyP99Ms: l.latencies.map((s) => s.rttMs.p99),
  };
  return l.result;
}

/** Starts the echo origin and every path, loads them in interleaved rounds, then measures idle tunnels. */
export async function websocketBench(
  ctx: BenchContext,
  o: WsOptions,
  log: (s: string) => void,
): Promise<WsPathResult[]> {
  const originPort = await freePort();
  const origin = start(
    'ws origin',
    process.execPath,
    [join(ctx.root, 'bench/servers/ws-echo-origin.ts'), '--port', String(originPort)],
    { cpu: LOAD_CPU },
  );
  const live: Live[] = [];
  const done: WsPathResult[] = [];
  try {
    await pollUntil(originPort, '/', ok, performance.now(), 10_000, origin);
    for (const p of PATHS) {
      log(`bench: websocket: start ${p.label}`);
      try {
        live.push(await startPath(ctx, p.id, originPort));
      } catch (e) {
        done.push({ id: p.id, label: p.label, skipped: `did not start: ${(e as Error).message}` });
      }
    }
    for (let r = 0; r < o.rounds; r++) {
      for (const l of [...live]) {
        log(`bench: websocket round ${r + 1}/${o.rounds}, ${l.result.label}`);
        try {
          await round(ctx, l, o, r === 0);
        } catch (e) {
          l.result.skipped = `failed: ${(e as Error).message}`;
          live.splice(live.indexOf(l), 1);
          done.push(l.result);
        }
      }
    }
    for (const l of live) done.push(await finish(ctx, l, o, log));
  } finally {
    for (const l of live) if (l.proc) await stop(l.proc);
    await stop(origin);
  }
  const order = PATHS.map((p) => p.id);
  return done.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}
