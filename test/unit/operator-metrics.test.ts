// The operator's per-Origin gauges as Prometheus scrapes them: set from the
// status the leader computes, one cause series at a time, gone with the Origin
// and when the replica stops leading.
import { describe, expect, it } from 'vitest';
import type { OriginStatus } from '../../src/api/status.ts';
import { OperatorMetrics } from '../../src/operator/metrics.ts';

/** The originguard_operator_origin_* sample lines of a scrape, sorted. */
async function originSeries(metrics: OperatorMetrics): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith('originguard_operator_origin_'))
    .sort();
}

const pods = { selected: 4, injected: 3, current: 3, reachable: 0, failing: 3 };
const failing: OriginStatus = {
  reachable: 'False',
  cause: 'connection_refused',
  pods,
  notInjected: { count: 1, samplePods: ['edge-old'], hint: 'restart the workload' },
};

describe('operator per-Origin gauges', () => {
  it('publishes reachability, pods by state and the current cause of an Origin', async () => {
    const m = new OperatorMetrics();
    m.setOriginStatus('web/shop', failing);
    expect(await originSeries(m)).toEqual([
      'originguard_operator_origin_cause{origin="web/shop",cause="connection_refused"} 1',
      'originguard_operator_origin_pods{origin="web/shop",state="current"} 3',
      'originguard_operator_origin_pods{origin="web/shop",state="failing"} 3',
      'originguard_operator_origin_pods{origin="web/shop",state="injected"} 3',
      'originguard_operator_origin_pods{origin="web/shop",state="not_injected"} 1',
      'originguard_operator_origin_pods{origin="web/shop",state="reachable"} 0',
      'originguard_operator_origin_pods{origin="web/shop",state="selected"} 4',
      'originguard_operator_origin_reachable{origin="web/shop"} 0',
    ]);
  });

  it('keeps one cause series per Origin: a new cause replaces the old one, recovery removes it', async () => {
    const m = new OperatorMetrics();
    m.setOriginStatus('web/shop', failing);
    m.setOriginStatus('web/shop', { ...failing, cause: 'dns_error' });
    const causes = (await originSeries(m)).filter((l) => l.includes('_cause{'));
    expect(causes).toEqual(['originguard_operator_origin_cause{origin="web/shop",cause="dns_error"} 1']);

    const { cause: _gone, ...recovered } = failing;
    m.setOriginStatus('web/shop', {
      ...recovered,
      reachable: 'True',
      pods: { selected: 4, injected: 4, current: 4, reachable: 4, failing: 0 },
    });
    const series = await originSeries(m);
    expect(series.filter((l) => l.includes('_cause{'))).toEqual([]);
    expect(series).toContain('originguard_operator_origin_reachable{origin="web/shop"} 1');
  });

  it('keeps one scope series per Origin while something fails, and none once nothing does or it is deleted', async () => {
    const m = new OperatorMetrics();
    const scoped = (scope: 'Nodes' | 'PodPath' | 'None'): OriginStatus => ({
      ...failing,
      triangulation: { scope, summary: '', reasoning: [] },
    });
    const scopes = async () => (await originSeries(m)).filter((l) => l.includes('_scope{'));
    m.setOriginStatus('web/shop', scoped('Nodes'));
    m.setOriginStatus('web/shop', scoped('PodPath'));
    expect(await scopes()).toEqual([
      'originguard_operator_origin_scope{origin="web/shop",scope="PodPath"} 1',
    ]);
    m.setOriginStatus('web/shop', scoped('None'));
    expect(await scopes()).toEqual([]);
    m.setOriginStatus('web/shop', scoped('Nodes'));
    m.deleteOrigin('web/shop');
    expect(await scopes()).toEqual([]);
  });

  it('has no reachable series while the status says Unknown (no report, no traffic yet)', async () => {
    const m = new OperatorMetrics();
    m.setOriginStatus('web/shop', failing);
    m.setOriginStatus('web/shop', { reachable: 'Unknown', pods });
    const series = await originSeries(m);
    expect(series.filter((l) => l.includes('_reachable{'))).toEqual([]);
    expect(series).toContain('originguard_operator_origin_pods{origin="web/shop",state="selected"} 4');
  });

  it("removes a deleted Origin's series and leaves the others", async () => {
    const m = new OperatorMetrics();
    m.setOriginStatus('web/shop', failing);
    m.setOriginStatus('web/blog', { ...failing, cause: 'connection_timeout' });
    m.deleteOrigin('web/shop');
    const series = await originSeries(m);
    expect(series.filter((l) => l.includes('web/shop'))).toEqual([]);
    expect(series.filter((l) => l.includes('web/blog'))).toHaveLength(8);
  });

  it('drops every Origin series when the replica stops leading', async () => {
    const m = new OperatorMetrics();
    m.setOriginStatus('web/shop', failing);
    m.setOriginStatus('web/blog', failing);
    m.clearOrigins();
    expect(await originSeries(m)).toEqual([]);
    // Leading again publishes afresh, the old cause forgotten.
    m.setOriginStatus('web/shop', { ...failing, cause: 'dns_timeout' });
    expect((await originSeries(m)).filter((l) => l.includes('_cause{'))).toEqual([
      'originguard_operator_origin_cause{origin="web/shop",cause="dns_timeout"} 1',
    ]);
  });
});
