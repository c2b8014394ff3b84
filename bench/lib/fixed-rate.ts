// Open-loop load at a fixed rate (run as its own process, pinned with the origin on CPU 0).
// Request i is due at start + i/rate whatever happened before, so a stall in the proxy shows
// up in the numbers instead of silently slowing the client down (coordinated omission).
// Prints one JSON object (FixedRateResult) on stdout.
//
//   node bench/lib/fixed-rate.ts --port P [--rate 2000] [--duration 5] [--warmup 1] [--connections 16]
import { parseArgs } from 'node:util';
import { buildRequest, HttpConnection, percentile } from './http-client.ts';

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface FixedRateResult {
  rate: number;
  durationS: number;
  /** Requests due in the measured window, and how many got a 2xx / other status / an error. */
  due: number;
  ok: number;
  non2xx: number;
  errors: number;
  achievedRate: number;
  /** From the write of the request to the last byte of the response, in ms. */
  serviceMs: LatencySummary;
  /** From the moment the request was due (includes client timer lag and queueing), in ms. */
  correctedMs: LatencySummary;
}

function summarize(samples: Float64Array, n: number): LatencySummary {
  const s = samples.subarray(0, n).sort();
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return {
    p50: r(percentile(s, 0.5)),
    p90: r(percentile(s, 0.9)),
    p99: r(percentile(s, 0.99)),
    p999: r(percentile(s, 0.999)),
    max: r(s[s.length - 1] ?? Number.NaN),
  };
}

export async function runFixedRate(opts: {
  host: string;
  port: number;
  rate: number;
  durationS: number;
  warmupS: number;
  connections: number;
}): Promise<FixedRateResult> {
  const request = buildRequest(`${opts.host}:${opts.port}`);
  const idle: HttpConnection[] = [];
  for (let i = 0; i < opts.connections; i++) idle.push(await HttpConnection.connect(opts.host, opts.port));
  const total = Math.round(opts.rate * (opts.warmupS + opts.durationS));
  const warm = Math.round(opts.rate * opts.warmupS);
  const cap = total - warm + 1;
  const service = new Float64Array(cap);
  const corrected = new Float64Array(cap);
  let recorded = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let done = 0;
  const backlog: number[] = [];
  const t0 = performance.now() + 20;
  const dueAt = (i: number) => t0 + (i * 1000) / opts.rate;

  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => {
    finish = r;
  });

  const dispatch = (conn: HttpConnection, i: number) => {
    const sentAt = performance.now();
    conn.send(request, 5000).then(
      (res) => {
        const now = performance.now();
        if (i >= warm) {
          service[recorded] = now - sentAt;
          corrected[recorded] = now - dueAt(i);
          recorded++;
          if (res.status >= 200 && res.status < 300) ok++;
          else non2xx++;
        }
        release(conn);
      },
      () => {
        if (i >= warm) errors++;
        // Replace the broken connection so the run can go on.
        HttpConnection.connect(opts.host, opts.port).then(release, () => settle());
      },
    );
  };
  const settle = () => {
    done++;
    if (done === total) finish();
  };
  const release = (conn: HttpConnection) => {
    settle();
    const next = backlog.shift();
    if (next !== undefined) dispatch(conn, next);
    else idle.push(conn);
  };

  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && dueAt(next) <= now) {
        const conn = idle.pop();
        if (conn) dispatch(conn, next);
        else backlog.push(next);
        next++;
      }
      if (next < total) setTimeout(tick, Math.max(0, Math.min(1, dueAt(next) - performance.now())));
      else resolve();
    };
    setTimeout(tick, 20);
  });
  // Bounded drain: whatever has not answered 5 s after the last due time counts as an error.
  const drained = await Promise.race([
    finished.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
  ]);
  if (!drained) errors += total - done;
  for (const c of idle) c.close();
  const measured = total - warm;
  return {
    rate: opts.rate,
    durationS: opts.durationS,
    due: measured,
    ok,
    non2xx,
    errors,
    achievedRate: Math.round(ok / opts.durationS),
    serviceMs: summarize(service, recorded),
    correctedMs: summarize(corrected, recorded),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      rate: { type: 'string', default: '2000' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '16' },
    },
  });
  const result = await runFixedRate({
    host: values.host,
    port: Number(values.port),
    rate: Number(values.rate),
    durationS: Number(values.duration),
    warmupS: Number(values.warmup),
    connections: Number(values.connections),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
