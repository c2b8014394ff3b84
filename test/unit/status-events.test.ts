import { describe, expect, it } from 'vitest';
import { CAUSES } from '../../src/api/causes.ts';
import { transitionEvents } from '../../src/operator/status-events.ts';
import { aggregate, pod, report } from '../support/aggregate-fixtures.ts';

describe('transitionEvents', () => {
  const reachable = aggregate([pod('a')], [report('a', 'Reachable')]);
  const refused = aggregate([pod('a')], [report('a', 'Unreachable', 'connection_refused')], reachable);
  const dns = aggregate([pod('a')], [report('a', 'Unreachable', 'dns_error')], refused);

  it('warns OriginUnreachable with the cause, the pods and the hint when the origin becomes unreachable', () => {
    expect(transitionEvents(reachable, refused, 'shop')).toEqual([
      {
        type: 'Warning',
        reason: 'OriginUnreachable',
        note: `Origin shop is unreachable from 1/1 pods: connection_refused. ${CAUSES.connection_refused.hint}`,
      },
    ]);
    expect(transitionEvents(undefined, refused, 'shop').map((e) => e.reason)).toEqual(['OriginUnreachable']);
  });

  it('warns CauseChanged when the cause changes while unreachable, and nothing when it stays', () => {
    expect(transitionEvents(refused, dns, 'shop')).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'CauseChanged' }),
    ]);
    expect(transitionEvents(refused, dns, 'shop')[0]?.note).toContain(
      'now dns_error (was connection_refused)',
    );
    expect(transitionEvents(dns, dns, 'shop')).toEqual([]);
  });

  it('says OriginReachable when the origin is reachable again, but not on first sight', () => {
    expect(transitionEvents(dns, reachable, 'shop')).toEqual([
      {
        type: 'Normal',
        reason: 'OriginReachable',
        note: 'Origin shop is reachable again: 1/1 pods reach it.',
      },
    ]);
    expect(transitionEvents(undefined, reachable, 'shop')).toEqual([]);
  });

  it('warns PodsNotInjected when selected pods without the sidecar appear', () => {
    const missing = aggregate([pod('a'), pod('b', { injected: false })], [report('a', 'Reachable')]);
    const events = transitionEvents(reachable, missing, 'shop');
    expect(events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'PodsNotInjected' })]);
    expect(events[0]?.note).toContain('kubectl rollout restart');
    expect(transitionEvents(missing, missing, 'shop')).toEqual([]);
  });
});
