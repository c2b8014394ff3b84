// Time-to-531 for originguard when the origin cannot be reached: refused (closed loopback port),
// DNS NXDOMAIN (from a local UDP DNS server), and connect timeout (an origin whose accept queue
// is full). Each scenario runs its own sidecar on CPU 1; requests go one at a time over a
// kept-alive client connection, so what is timed is the sidecar's own work after the failure.
import net from 'node:net';
import { join } from 'node:path';
import { startNxdomainServer } from './dns-nxdomain.ts';
import { buildRequest, HttpConnection, type HttpResponse, percentile } from './http-client.ts';
import { type Started, start, stop } from './processes.ts';
import {
  type BenchContext,
  freePort,
  isOk,
  LOAD_CPU,
  pollUntil,
  type Running,
  startOriginguard,
} from './subjects.ts';

export interface Sample {
  ms: number;
  status: number;
  proxyStatus: string;
  sentAt: number;
  receivedAt: number;
}

export interface Stats {
  n: number;
  first: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ScenarioResult {
  scenario: 'refused' | 'nxdomain' | 'connect-timeout';
  skipped?: string;
  /** Statuses seen, e.g. {"531": 200}. */
  statuses?: Record<string, number>;
  /** Proxy-Status and body of the first answer, to show the cause the sidecar gave. */
  firstProxyStatus?: string;
  firstBody?: string;
  /** Client-side time from request written to the whole answer read, ms. */
  timeTo531?: Stats;
  /** The part attributable to the sidecar (see `deltaOver`), ms. */
  delta?: Stats;
  deltaOver?: string;
  notes?: string[];
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;

export function stats(values: readonly number[]): Stats {
  const sorted = Float64Array.from(values).sort();
  return {
    n: values.length,
    first: r3(values[0] ?? Number.NaN),
    p50: r3(percentile(sorted, 0.5)),
    p99: r3(percentile(sorted, 0.99)),
    max: r3(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

interface Run {
  samples: Sample[];
  firstBody: string;
}

async function sendSequential(port: number, n: number, timeoutMs: number): Promise<Run> {
  const request = buildRequest(`127.0.0.1:${port}`, '/', { Accept: 'application/json' });
  const samples: Sample[] = [];
  let firstBody = '';
  let conn = await HttpConnection.connect('127.0.0.1', port);
  const deadline = performance.now() + 60_000;
  for (let i = 0; i < n && performance.now() < deadline; i++) {
    if (!conn.usable) conn = await HttpConnection.connect('127.0.0.1', port);
    const sentAt = performance.now();
    let res: HttpResponse;
    try {
      res = await conn.send(request, timeoutMs);
    } catch (e) {
      samples.push({
        ms: performance.now() - sentAt,
        status: 0,
        proxyStatus: String(e),
        sentAt,
        receivedAt: 0,
      });
      conn.close();
      continue;
    }
    const receivedAt = performance.now();
    const proxyStatus = res.headers.get('proxy-status') ?? '';
    samples.push({ ms: receivedAt - sentAt, status: res.status, proxyStatus, sentAt, receivedAt });
    if (i === 0) firstBody = res.body.toString('utf8').slice(0, 400);
  }
  conn.close();
  return { samples, firstBody };
}

function summarizeSamples({ samples, firstBody }: Run): Partial<ScenarioResult> {
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
  return {
    statuses,
    firstProxyStatus: samples[0]?.proxyStatus ?? '',
    firstBody,
    timeTo531: stats(samples.map((s) => s.ms)),
  };
}

/** Waits for /readyz 200; if that never comes (readiness may follow origin health), for the listener. */
async function ready(run: Running, notes: string[]): Promise<void> {
  const t0 = performance.now();
  try {
    await pollUntil(run.adminPort ?? 0, '/readyz', isOk, t0, 3000, run.proc);
  } catch (e) {
    if (run.proc?.exitStatus() !== undefined) throw e;
    notes.push('/readyz did not answer 200 within 3 s with the origin down; waited for the listener instead');
    await pollUntil(run.port, '/', () => true, performance.now(), 5000, run.proc);
  }
}

async function withSidecar(
  ctx: BenchContext,
  name: string,
  upstream: { host: string; port: number; connectTimeout?: string },
  extraArgs: readonly string[],
  body: (run: Running, notes: string[]) => Promise<Partial<ScenarioResult>>,
): Promise<Partial<ScenarioResult>> {
  const run = await startOriginguard(ctx, name, upstream, extraArgs);
  const notes: string[] = [];
  try {
    await ready(run, notes);
    const result = await body(run, notes);
    return { ...result, notes: [...notes, ...(result.notes ?? [])] };
  } finally {
    if (run.proc) await stop(run.proc);
  }
}

/** Median time for this process to see ECONNREFUSED from a closed loopback port: the refusal itself. */
async function refusalBaseline(port: number, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('error', () => resolve());
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
    });
    times.push(performance.now() - t0);
  }
  return stats(times).p50;
}

export async function refused(ctx: BenchContext, n = 200): Promise<ScenarioResult> {
  const closedPort = await freePort();
  const baseline = await refusalBaseline(closedPort, 50);
  const r = await withSidecar(ctx, 'og-refused', { host: '127.0.0.1', port: closedPort }, [], async (run) => {
    const run5 = await sendSequential(run.port, n, 5000);
    const samples = run5.samples;
    return {
      ...summarizeSamples(run5),
      delta: stats(samples.map((s) => s.ms - baseline)),
      deltaOver: `time-to-531 minus the refusal itself (a plain connect to the closed port: ${r3(baseline)} ms median)`,
    };
  });
  return { scenario: 'refused', ...r };
}

export async function nxdomain(ctx: BenchContext, n = 20): Promise<ScenarioResult> {
  const dns = await startNxdomainServer();
  try {
    const upstream = { host: 'origin.nxdomain.bench.test', port: 80 };
    const args = ['--dns-server', `127.0.0.1:${dns.port}`];
    const r = await withSidecar(ctx, 'og-nxdomain', upstream, args, async (run) => {
      const before = dns.events.length;
      const sent = await sendSequential(run.port, n, 10_000);
      const samples = sent.samples;
      const deltas: number[] = [];
      let withQuery = 0;
      for (const s of samples) {
        const answers = dns.events
          .slice(before)
          .filter((e) => e.receivedAt >= s.sentAt && e.answeredAt <= s.receivedAt);
        if (answers.length === 0) continue;
        withQuery++;
        deltas.push(s.receivedAt - Math.max(...answers.map((e) => e.answeredAt)));
      }
      const notes = [
        `${dns.events.length - before} DNS queries for ${n} requests; ${withQuery} requests caused a query (the rest were answered from a negative cache or outlier ejection)`,
      ];
      return {
        ...summarizeSamples(sent),
        ...(deltas.length > 0 ? { delta: stats(deltas) } : {}),
        deltaOver: 'the last NXDOMAIN answer sent by the local DNS server (requests that caused a query)',
        notes,
      };
    });
    return { scenario: 'nxdomain', ...r };
  } finally {
    await dns.close();
  }
}

/** Starts the never-accepting origin and fills its accept queue; returns held sockets. */
async function fullAcceptQueue(
  ctx: BenchContext,
): Promise<{ proc: Started; port: number; held: net.Socket[] }> {
  const script = join(ctx.root, 'bench/servers/stuck-origin.ts');
  const proc = start('stuck origin', process.execPath, [script, '--hold', '120'], { cpu: LOAD_CPU });
  const t0 = performance.now();
  let port = 0;
  while (port === 0 && performance.now() - t0 < 5000) {
    const m = /\{"port":(\d+)\}/.exec(proc.stdout());
    if (m?.[1]) port = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 10));
  }
  if (port === 0) throw new Error(`stuck origin did not start: ${proc.output()}`);
  const held: net.Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      s.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!connected) {
      s.destroy();
      return { proc, port, held };
    }
    held.push(s);
  }
  for (const s of held) s.destroy();
  throw new Error('could not fill the accept queue: 8 connections completed');
}

export async function connectTimeout(ctx: BenchContext, configuredMs = 200, n = 3): Promise<ScenarioResult> {
  let origin: Awaited<ReturnType<typeof fullAcceptQueue>> | undefined;
  try {
    origin = await fullAcceptQueue(ctx);
    const upstream = { host: '127.0.0.1', port: origin.port, connectTimeout: `${configuredMs}ms` };
    const held = origin.held.length;
    const r = await withSidecar(ctx, 'og-connect-timeout', upstream, [], async (run) => {
      const sent = await sendSequential(run.port, n, 10_000);
      return {
        ...summarizeSamples(sent),
        delta: stats(sent.samples.map((s) => s.ms - configuredMs)),
        deltaOver: `the configured timeouts.connect (${configuredMs} ms)`,
        notes: [
          `accept queue filled with ${held} held connections (backlog 1); further SYNs are dropped`,
          'requests after the first may be answered early by outlier ejection',
        ],
      };
    });
    return { scenario: 'connect-timeout', ...r };
  } finally {
    for (const s of origin?.held ?? []) s.destroy();
    if (origin) await stop(origin.proc, 500);
  }
}
