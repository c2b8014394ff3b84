// Reading Prometheus text exposition, for the benchmarks and the operator
// process the tests run (run-operator.ts): samples by name and labels, counters summed over label sets, and histogram quantiles computed as
// Prometheus' histogram_quantile() does (linear within the bucket), plus the
// exact share of observations at or below a bucket bound, which is what a
// target such as "p99 ≤ 25 ms" checks when 25 ms is a bucket bound.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ([-+0-9.eEInfNa]+)(?: \d+)?$/;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    ) as Record<string, string>;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples a process serves on http://127.0.0.1:<port>/metrics. */
export async function metricsAt(port: number): Promise<Sample[]> {
  return parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
}

const matches = (s: Sample, labels: Record<string, string>) =>
  Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** The sum of every sample of `name` whose labels include `labels`. */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && matches(s, labels)).reduce((a, s) => a + s.value, 0);
}

/** Cumulative bucket counts by upper bound (ascending, +Inf last), summed over matching label sets. */
export type Histogram = { le: number; count: number }[];

export function histogramOf(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): Histogram {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !matches(s, labels)) continue;
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** Observations between two readings of the same histogram. */
export function histogramDelta(before: Histogram, after: Histogram): Histogram {
  return after.map((b) => ({ le: b.le, count: b.count - (before.find((a) => a.le === b.le)?.count ?? 0) }));
}

export const observations = (h: Histogram) => h.at(-1)?.count ?? 0;

/** The q-quantile, interpolated linearly within its bucket; the last finite bound if it falls in +Inf. */
export function quantile(h: Histogram, q: number): number {
  const total = observations(h);
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of h) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return lower;
      const inBucket = b.count - below;
      return inBucket === 0 ? b.le : lower + ((b.le - lower) * (rank - below)) / inBucket;
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

/** Share of observations at or below `le`, which must be a bucket bound. */
export function shareAtOrBelow(h: Histogram, le: number): number {
  const bucket = h.find((b) => b.le === le);
  if (bucket === undefined) throw new Error(`${le} is not a bucket bound of this histogram`);
  const total = observations(h);
  return total === 0 ? Number.NaN : bucket.count / total;
}
