// The benchmarks' reading of Prometheus text: the operator benchmark checks its
// webhook target on these numbers, so they must be right.
import { describe, expect, it } from 'vitest';
import {
  histogramDelta,
  histogramOf,
  parseMetrics,
  quantile,
  shareAtOrBelow,
  sumOf,
} from '../../hack/prom-text.ts';

const TEXT = `# HELP review time
# TYPE review histogram
review_bucket{le="0.005",path="a"} 50
review_bucket{le="0.025",path="a"} 90
review_bucket{le="0.1",path="a"} 100
review_bucket{le="+Inf",path="a"} 100
review_bucket{le="0.005",path="b"} 0
review_bucket{le="0.025",path="b"} 0
review_bucket{le="0.1",path="b"} 0
review_bucket{le="+Inf",path="b"} 100
review_sum{path="a"} 1.5
review_count{path="a"} 100
up{job="x",msg="a \\"quoted\\" value"} 1
up{job="y"} 2.5e0
`;

describe('prom-text', () => {
  it('sums the samples of a name whose labels match', () => {
    const m = parseMetrics(TEXT);
    expect(sumOf(m, 'up')).toBe(3.5);
    expect(sumOf(m, 'up', { job: 'y' })).toBe(2.5);
    expect(sumOf(m, 'review_sum')).toBe(1.5);
    expect(sumOf(m, 'absent')).toBe(0);
  });

  it('interpolates quantiles within buckets as histogram_quantile() does', () => {
    const h = histogramOf(parseMetrics(TEXT), 'review', { path: 'a' });
    expect(h.map((b) => b.le)).toEqual([0.005, 0.025, 0.1, Number.POSITIVE_INFINITY]);
    expect(quantile(h, 0.5)).toBeCloseTo(0.005);
    // Rank 70 of 100 is half-way through the (0.005, 0.025] bucket's 40 observations.
    expect(quantile(h, 0.7)).toBeCloseTo(0.015);
    expect(quantile(h, 0.99)).toBeCloseTo(0.025 + 0.075 * 0.9);
    expect(shareAtOrBelow(h, 0.025)).toBe(0.9);
    expect(() => shareAtOrBelow(h, 0.02)).toThrow(/not a bucket bound/);
  });

  it('reports the last finite bound when the quantile falls in +Inf, and takes deltas between readings', () => {
    const all = parseMetrics(TEXT);
    expect(quantile(histogramOf(all, 'review', { path: 'b' }), 0.5)).toBe(0.1);
    const before = histogramOf(all, 'review', { path: 'a' });
    const after = before.map((b) => ({ le: b.le, count: b.count + (b.le >= 0.1 ? 10 : 0) }));
    const d = histogramDelta(before, after);
    expect(d.map((b) => b.count)).toEqual([0, 0, 10, 10]);
    expect(quantile(histogramDelta(before, before), 0.5)).toBeNaN();
  });
});
