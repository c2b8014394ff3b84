// originguard benchmark: direct, nginx, @fastify/http-proxy and originguard side by side on
// loopback against the same origin, plus originguard's time-to-531, and WebSocket tunnels
// through nginx and originguard. See bench/README.md.
//
//   npm run bench                      (builds dist/, then runs this)
//   node bench/run.ts --help
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectTimeout, nxdomain, refused, type ScenarioResult } from './lib/failures.ts';
import type { FixedRateResult } from './lib/fixed-rate.ts';
import { nginxOrigin } from './lib/nginx.ts';
import {
  cpuBusy,
  cpuJiffies,
  groupCpuSeconds,
  groupRss,
  runToEnd,
  sampleRss,
  setUpPinning,
  start,
  stop,
  stopAll,
} from './lib/processes.ts';
import {
  computeTargets,
  consoleReport,
  markdownReport,
  mb,
  medianBy,
  type Results,
  type SubjectResult,
} from './lib/report.ts';
import {
  type BenchContext,
  freePort,
  isOk,
  LOAD_CPU,
  pollUntil,
  pollUntilResponse,
  type Running,
  SUBJECTS,
  type SubjectId,
  servesOrigin,
  startSubject,
} from './lib/subjects.ts';
import { ensureTools } from './lib/tools.ts';
import { type WsPathResult, websocketBench } from './lib/websocket.ts';
import { runWrk } from './lib/wrk.ts';

const HELP = `Usage: node bench/run.ts [options]   (npm run bench builds dist/ first)

  --duration S        seconds per measured run (default 4)
  --rounds N          interleaved rounds over all paths; each reports its median (default 3)
  --warmup S          seconds of warm-up before each measured run (default 1)
  --connections N     wrk connections at saturation (default 50)
  --rate R            fixed request rate (default 2000)
  --only LIST         comma list of: direct,nginx,fastify-http-proxy,originguard (default all)
  --no-failures       skip originguard's time-to-531 scenarios
  --no-websocket      skip the WebSocket tunnel bench
  --websocket-only    run only the WebSocket tunnel bench
  --ws-connections N  WebSocket connections at saturation (default 50)
  --ws-tunnels N      idle tunnels held open for the memory measure (default 1000)
  --origin KIND       nginx (default) or node
  --originguard-cli P the built originguard CLI (default: dist/originguard.mjs)
  --no-install        do not apt-get install missing nginx/wrk, only say how
  --out DIR           results directory (default bench/results)
`;

const FIXED_RATE_CONNECTIONS = 16;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stdout.write(`${s}\n`);

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    rate: { type: 'string', default: '2000' },
    only: { type: 'string', default: SUBJECTS.map((s) => s.id).join(',') },
    'no-failures': { type: 'boolean', default: false },
    'no-websocket': { type: 'boolean', default: false },
    'websocket-only': { type: 'boolean', default: false },
    'ws-connections': { type: 'string', default: '50' },
    'ws-tunnels': { type: 'string', default: '1000' },
    origin: { type: 'string', default: 'nginx' },
    'originguard-cli': { type: 'string', default: 'dist/originguard.mjs' },
    'no-install': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
    help: { type: 'boolean', default: false },
  },
});

async function startOrigin(ctx: BenchContext, kind: string): Promise<void> {
  const proc =
    kind === 'node'
      ? start(
          'node origin',
          process.execPath,
          [join(root, 'bench/servers/node-origin.ts'), '--port', String(ctx.originPort)],
          {
            cpu: LOAD_CPU,
          },
        )
      : start('nginx origin', 'nginx', nginxOrigin(ctx.dir, ctx.originPort), { cpu: LOAD_CPU });
  await pollUntil(ctx.originPort, '/', servesOrigin, performance.now(), 10_000, proc);
}

async function fixedRate(port: number): Promise<FixedRateResult> {
  const durationS = Number(opt.duration);
  const warmupS = Number(opt.warmup);
  const args = [
    join(root, 'bench/lib/fixed-rate.ts'),
    '--port',
    String(port),
    '--rate',
    opt.rate,
    '--duration',
    String(durationS),
    '--warmup',
    String(warmupS),
    '--connections',
    String(FIXED_RATE_CONNECTIONS),
  ];
  const boundMs = (durationS + warmupS + 20) * 1000;
  const out = await runToEnd('fixed-rate client', process.execPath, args, { cpu: LOAD_CPU }, boundMs);
  return JSON.parse(out) as FixedRateResult;
}

interface Live {
  result: SubjectResult;
  run: Running;
  saturations: NonNullable<SubjectResult['saturation']>[];
  fixedRates: FixedRateResult[];
  maxRss: number;
}

/** Starts one path and times it to ready; the idle RSS is read 1 s later. */
async function startPath(ctx: BenchContext, id: SubjectId, label: string): Promise<Live | SubjectResult> {
  const result: SubjectResult = { id, label };
  if (id === 'originguard' && !existsSync(resolve(root, ctx.originguardCli))) {
    return { ...result, skipped: `${ctx.originguardCli} not found (npm run build makes it)` };
  }
  const t0 = performance.now();
  const run = await startSubject(ctx, id);
  try {
    const proxied = pollUntilResponse(run.port, '/', servesOrigin, t0, 10_000, run.proc);
    const readyz =
      run.adminPort === undefined
        ? undefined
        : pollUntil(run.adminPort, '/readyz', isOk, t0, 10_000, run.proc);
    const first = await proxied;
    if (run.proc) {
      result.readyMs = Math.round(first.ms * 10) / 10;
      result.readyAnsweredBy = { server: first.server, via: first.via };
    }
    if (readyz) result.readyzMs = Math.round((await readyz) * 10) / 10;
  } catch (e) {
    if (run.proc) await stop(run.proc);
    return { ...result, skipped: `did not start: ${(e as Error).message}` };
  }
  await sleep(1000);
  if (run.proc) result.idleRssMb = mb(groupRss(run.proc.pid));
  return { result, run, saturations: [], fixedRates: [], maxRss: 0 };
}

async function saturate(l: Live, warmUp: boolean): Promise<void> {
  const { port, proc } = l.run;
  const exited = proc?.exitStatus();
  if (exited !== undefined) throw new Error(`exited with ${exited}: ${proc?.output().slice(-2000)}`);
  const connections = Number(opt.connections);
  if (warmUp) await runWrk({ port, durationS: Number(opt.warmup), connections, cpu: LOAD_CPU });
  const rss = proc ? sampleRss(proc.pid) : undefined;
  const cpu0 = proc ? groupCpuSeconds(proc.pid) : 0;
  const j0 = cpuJiffies();
  const t1 = performance.now();
  const wrk = await runWrk({ port, durationS: Number(opt.duration), connections, cpu: LOAD_CPU });
  const wall = (performance.now() - t1) / 1000;
  const busy = cpuBusy(j0, cpuJiffies());
  const proxyCores = proc ? Math.round(((groupCpuSeconds(proc.pid) - cpu0) / wall) * 100) / 100 : 0;
  if (rss) l.maxRss = Math.max(l.maxRss, rss());
  l.saturations.push({ ...wrk, proxyCores, cpuBusy: busy });
}

function finish(l: Live): SubjectResult {
  const r = l.result;
  const sat = medianBy(l.saturations, (s) => s.requestsPerSec);
  if (sat) r.saturation = sat;
  const fr = medianBy(l.fixedRates, (f) => f.serviceMs.p99);
  if (fr) r.fixedRate = fr;
  if (l.run.proc && l.maxRss > 0) r.loadedRssMb = mb(l.maxRss);
  r.rounds = {
    requestsPerSec: l.saturations.map((s) => s.requestsPerSec),
    fixedRateP99Ms: l.fixedRates.map((f) => f.serviceMs.p99),
  };
  return r;
}

/**
 * Starts every path, then loads them in interleaved rounds (A B C D, A B C D, ...) so that a
 * change in background load hits all of them alike; each path reports its median round.
 */
async function measurePaths(ctx: BenchContext, only: ReadonlySet<string>): Promise<SubjectResult[]> {
  const live: Live[] = [];
  const done: SubjectResult[] = [];
  const fail = (l: Live, e: unknown) => {
    l.result.skipped = `failed: ${(e as Error).message}`;
    live.splice(live.indexOf(l), 1);
    done.push(l.result);
    if (l.run.proc) void stop(l.run.proc);
  };
  for (const s of SUBJECTS.filter((x) => only.has(x.id))) {
    log(`bench: start ${s.label}`);
    let r: Live | SubjectResult;
    try {
      r = await startPath(ctx, s.id, s.label);
    } catch (e) {
      r = { id: s.id, label: s.label, skipped: `failed: ${(e as Error).message}` };
    }
    if ('run' in r) live.push(r);
    else {
      log(`bench:   skipped: ${r.skipped}`);
      done.push(r);
    }
  }
  const rounds = Number(opt.rounds);
  for (let round = 0; round < rounds; round++) {
    for (const l of [...live]) {
      log(`bench: round ${round + 1}/${rounds}, ${l.result.label}: saturation, then ${opt.rate} req/s`);
      try {
        await saturate(l, round === 0);
        await sleep(300);
        l.fixedRates.push(await fixedRate(l.run.port));
        await sleep(300);
      } catch (e) {
        fail(l, e);
      }
    }
  }
  for (const l of live) {
    done.push(finish(l));
    if (l.run.proc) await stop(l.run.proc);
  }
  const order = SUBJECTS.map((s) => s.id);
  return done.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}

async function failureScenarios(ctx: BenchContext, ogSkipped: string | undefined): Promise<ScenarioResult[]> {
  const scenarios = [
    ['refused', refused],
    ['nxdomain', nxdomain],
    ['connect-timeout', connectTimeout],
  ] as const;
  const out: ScenarioResult[] = [];
  for (const [name, fn] of scenarios) {
    if (ogSkipped) {
      out.push({ scenario: name, skipped: `originguard ${ogSkipped}` });
      continue;
    }
    log(`bench: originguard time-to-531, ${name}`);
    try {
      out.push(await fn(ctx));
    } catch (e) {
      out.push({ scenario: name, skipped: `failed: ${(e as Error).message}` });
    }
  }
  return out;
}

function git(): { commit: string; dirty: boolean } {
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const st = spawnSync('git', ['status', '--porcelain', '--', 'src', 'bench'], {
    cwd: root,
    encoding: 'utf8',
  });
  return { commit: rev.stdout.trim() || 'unknown', dirty: st.stdout.trim().length > 0 };
}

function warningsFor(subjects: readonly SubjectResult[], pinned: boolean): string[] {
  const w: string[] = [];
  if (!pinned) w.push('proxies are not pinned to their own CPU: ratios are not comparable with the targets');
  const load = loadavg()[0] ?? 0;
  if (load > 2.5)
    w.push(
      `load average ${load.toFixed(2)} on ${cpus().length} CPUs: other work competes, numbers are noisy`,
    );
  for (const s of subjects) {
    const sat = s.saturation;
    if (!sat) continue;
    const errors = sat.non2xx + Object.values(sat.socketErrors).reduce((a, b) => a + b, 0);
    if (errors > 0) w.push(`${s.label}: ${errors} non-2xx responses or socket errors at saturation`);
    if (s.id !== 'direct' && pinned && sat.proxyCores < 0.85)
      w.push(
        `${s.label}: the proxy used only ${sat.proxyCores} of its core at saturation (CPU 1 busy ${sat.cpuBusy[1]}): something else ran on CPU 1, or the load generator was the bottleneck`,
      );
    const fr = s.fixedRate;
    if (fr && (fr.errors > 0 || fr.non2xx > 0 || fr.ok < fr.due * 0.99))
      w.push(`${s.label}: fixed rate: ${fr.ok}/${fr.due} ok, ${fr.non2xx} non-2xx, ${fr.errors} errors`);
  }
  return w;
}

function wsWarnings(paths: readonly WsPathResult[], pinned: boolean): string[] {
  return paths.flatMap((p) =>
    p.id !== 'direct' && pinned && p.saturation && p.saturation.proxyCores < 0.85
      ? [
          `WebSocket, ${p.label}: the proxy used only ${p.saturation.proxyCores} of its core at saturation: the load side (CPU 0) may be what limits it`,
        ]
      : [],
  );
}

async function main(): Promise<number> {
  if (opt.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (Number(process.versions.node.split('.')[0]) < 24) {
    process.stderr.write(
      `bench: needs Node 24 (this is ${process.version}); run it with npm run bench, or put node_modules/.bin first in PATH\n`,
    );
    return 2;
  }
  const only = new Set(opt.only.split(','));
  const unknown = [...only].filter((o) => !SUBJECTS.some((s) => s.id === o));
  if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')}`);
  const needNginx = opt.origin !== 'node' || only.has('nginx') || !opt['no-websocket'];
  let tools: ReturnType<typeof ensureTools>;
  try {
    tools = ensureTools(['taskset', 'wrk', ...(needNginx ? ['nginx'] : [])], !opt['no-install']);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  const pinning = setUpPinning();
  log(`bench: ${pinning.reason}`);
  const dir = mkdtempSync(join(tmpdir(), 'originguard-bench-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ctx: BenchContext = {
    dir,
    root,
    originPort: await freePort(),
    originguardCli: opt['originguard-cli'],
  };
  const loadavgStart = loadavg().map((v) => Math.round(v * 100) / 100);
  const subjects: SubjectResult[] = [];
  let failures: ScenarioResult[] = [];
  let websocket: WsPathResult[] = [];
  try {
    if (!opt['websocket-only']) {
      await startOrigin(ctx, opt.origin);
      subjects.push(...(await measurePaths(ctx, only)));
      if (!opt['no-failures']) {
        const og = subjects.find((s) => s.id === 'originguard');
        failures = await failureScenarios(ctx, og ? og.skipped : 'not selected (--only)');
      }
    }
    if (!opt['no-websocket']) {
      websocket = await websocketBench(
        ctx,
        {
          rounds: Number(opt.rounds),
          durationS: Number(opt.duration),
          warmupS: Number(opt.warmup),
          connections: Number(opt['ws-connections']),
          idleTunnels: Number(opt['ws-tunnels']),
        },
        log,
      );
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }

  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const results: Results = {
    date,
    git: git(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? 'unknown',
      kernel: `Linux ${release()}`,
      loadavgStart,
      loadavgEnd: loadavg().map((v) => Math.round(v * 100) / 100),
    },
    node: process.version,
    tools: tools.map(({ name, version }) => ({ name, version })),
    pinning,
    settings: {
      origin: opt.origin,
      'originguard CLI': ctx.originguardCli,
      'duration s': Number(opt.duration),
      rounds: Number(opt.rounds),
      'warm-up s': Number(opt.warmup),
      'wrk connections': Number(opt.connections),
      'fixed rate req/s': Number(opt.rate),
      'fixed-rate connections': FIXED_RATE_CONNECTIONS,
      'ws connections': Number(opt['ws-connections']),
      'ws idle tunnels': Number(opt['ws-tunnels']),
    },
    subjects,
    failures,
    websocket,
    targets: computeTargets(subjects, failures, websocket),
    warnings: [...warningsFor(subjects, pinning.enabled), ...wsWarnings(websocket, pinning.enabled)],
  };
  const outDir = resolve(root, opt.out);
  mkdirSync(outDir, { recursive: true });
  const jsonName = `${date.replaceAll(':', '-')}.json`;
  writeFileSync(join(outDir, jsonName), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'latest.md'), markdownReport(results, jsonName));
  log(consoleReport(results));
  log(`bench: wrote ${join(opt.out, jsonName)} and ${join(opt.out, 'latest.md')}`);
  return 0;
}

process.exitCode = await main();
