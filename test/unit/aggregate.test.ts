import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES, CAUSES } from '../../src/api/causes.ts';
import { INJECT_ANNOTATION } from '../../src/api/contract.ts';
import type { Health, OriginReport } from '../../src/api/report.ts';
import { MAX_CAUSES, MAX_SAMPLE_PODS, OriginStatus as OriginStatusSchema } from '../../src/api/status.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { causeReason, SPEC_APPLY_GRACE_MS } from '../../src/operator/aggregate.ts';
import { statusChanged } from '../../src/operator/status-diff.ts';
import { transitionEvents } from '../../src/operator/status-events.ts';
import { aggregate, conditionOf, NOW, pod, report, summary } from '../support/aggregate-fixtures.ts';

describe('aggregateStatus: which pods and reports count', () => {
  it('counts selected, injected, current, reachable and failing pods', () => {
    const pods = [pod('a'), pod('b', { native: false }), pod('c'), pod('d', { injected: false })];
    const reports = [
      report('a', 'Reachable'),
      report('b', 'Unreachable', 'connection_refused'),
      report('c', 'Reachable', undefined, { originGeneration: 1 }),
    ];
    const s = aggregate(pods, reports);
    expect(s.pods).toEqual({ selected: 4, injected: 3, current: 2, reachable: 2, failing: 1 });
    expect(s.podsSummary).toBe('2/4');
    expect(s.observedGeneration).toBe(2);
  });

  it('leaves out finished, terminating and unselected pods, and the reports they wrote', () => {
    const pods = [
      pod('a'),
      pod('done', { phase: 'Succeeded' }),
      pod('crashed', { phase: 'Failed' }),
      pod('leaving', { deleting: true }),
      pod('other', { labels: { app: 'cart' } }),
    ];
    const reports = ['a', 'done', 'crashed', 'leaving', 'other'].map((p) =>
      report(p, 'Unreachable', 'connection_refused'),
    );
    const counts = { selected: 1, injected: 1, current: 1, reachable: 0, failing: 1 };
    expect(aggregate(pods, reports).pods).toEqual(counts);
  });

  it('ignores reports of gone pods, of a recreated Origin and of other Origins', () => {
    const reports = [
      report('a', 'Reachable'),
      report('a', 'Unreachable', 'dns_error', { podUID: 'uid-of-an-older-pod-a' }),
      report('b', 'Unreachable', 'dns_error', { originUID: 'uid-of-a-deleted-origin' }),
      report('c', 'Unreachable', 'dns_error', { originName: 'cart' }),
      report('gone', 'Unreachable', 'dns_error'),
    ];
    const s = aggregate([pod('a'), pod('b'), pod('c')], reports);
    expect(s.pods).toMatchObject({ reachable: 1, failing: 0 });
    expect(s.reachable).toBe('True');
  });

  it('counts a report written before the sidecar knew the Origin UID', () => {
    const { originUID: _, ...withoutUid } = report('a', 'Reachable').status;
    const s = aggregate([pod('a')], [{ ...report('a', 'Reachable'), status: withoutUid }]);
    expect(s.pods?.reachable).toBe(1);
  });
});

describe('aggregateStatus: conditions', () => {
  it('is Ready when every pod reaches the origin on the current spec', () => {
    const s = aggregate([pod('a'), pod('b')], [report('a', 'Reachable'), report('b', 'Reachable')]);
    expect(summary(s)).toEqual({
      Ready: 'True/Ready',
      Reachable: 'True/OriginReachable',
      Degraded: 'False/AsExpected',
    });
    expect(s.reachable).toBe('True');
    expect(s).not.toHaveProperty('cause');
    expect(s).not.toHaveProperty('hint');
    expect(s).not.toHaveProperty('causes');
    expect(s).not.toHaveProperty('notInjected');
    for (const c of s.conditions ?? []) {
      expect(c).toMatchObject({ observedGeneration: 2, lastTransitionTime: '2026-11-23T19:00:00Z' });
    }
  });

  it('is unreachable with the cause as reason, the pods, the summary and the hint when every pod fails', () => {
    const s = aggregate(
      [pod('a'), pod('b'), pod('c', { injected: false })],
      [report('a', 'Unreachable', 'connection_refused'), report('b', 'Unreachable', 'connection_refused')],
    );
    const hint = CAUSES.connection_refused.hint;
    expect(conditionOf(s, 'Reachable')).toMatchObject({
      status: 'False',
      reason: 'ConnectionRefused',
      message: `2/3 pods: ${CAUSES.connection_refused.summary} ${hint}`,
    });
    expect(conditionOf(s, 'Ready')).toMatchObject({ status: 'False', reason: 'OriginUnreachable' });
    expect(conditionOf(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'PodsNotInjected' });
    expect(s).toMatchObject({ reachable: 'False', cause: 'connection_refused', hint, podsSummary: '0/3' });
  });

  it('names DNS causes DnsError and falls back to the report hint for a cause it does not know', () => {
    const dns = aggregate([pod('a')], [report('a', 'Unreachable', 'dns_error')]);
    expect(conditionOf(dns, 'Reachable')?.reason).toBe('DnsError');
    const future = aggregate([pod('a')], [report('a', 'Unreachable', 'quantum_error', { hint: 'check it' })]);
    expect(conditionOf(future, 'Reachable')?.reason).toBe('QuantumError');
    expect(future.hint).toBe('check it');
  });

  it('is partially reachable and degraded when some pods fail while others reach the origin', () => {
    const s = aggregate(
      [pod('a'), pod('b')],
      [report('a', 'Reachable'), report('b', 'Unreachable', 'connection_timeout')],
    );
    expect(summary(s)).toEqual({
      Ready: 'False/SomePodsFailing',
      Reachable: 'True/PartiallyReachable',
      Degraded: 'True/SomePodsFailing',
    });
    expect(s).toMatchObject({ reachable: 'True', cause: 'connection_timeout', podsSummary: '1/2' });
  });

  it('is unknown while no sidecar has reported, and while no request reached the origin', () => {
    expect(summary(aggregate([pod('a')], []))).toMatchObject({
      Ready: 'Unknown/AwaitingReports',
      Reachable: 'Unknown/NoReports',
    });
    expect(summary(aggregate([pod('a')], [report('a', 'Unknown')]))).toMatchObject({
      Ready: 'Unknown/AwaitingReports',
      Reachable: 'Unknown/AwaitingTraffic',
    });
  });

  it('is not Ready, rather than unknown, when no pod is selected or some lack the sidecar', () => {
    expect(summary(aggregate([], []))).toEqual({
      Ready: 'False/NoPodsSelected',
      Reachable: 'Unknown/NoReports',
      Degraded: 'False/AsExpected',
    });
    expect(summary(aggregate([pod('a', { injected: false })], []))).toMatchObject({
      Ready: 'False/PodsNotInjected',
      Degraded: 'True/PodsNotInjected',
    });
    expect(summary(aggregate([pod('a'), pod('b', { injected: false })], []))).toEqual({
      Ready: 'False/PodsNotInjected',
      Reachable: 'Unknown/NoReports',
      Degraded: 'True/PodsNotInjected',
    });
  });

  it('keeps lastTransitionTime of a condition whose status did not change', () => {
    const first = aggregate([pod('a')], [report('a', 'Reachable')]);
    const later = new Date(NOW.getTime() + 60_000);
    const same = aggregate([pod('a')], [report('a', 'Reachable')], first, later);
    expect(conditionOf(same, 'Ready')?.lastTransitionTime).toBe('2026-11-23T19:00:00Z');
    const failing = aggregate([pod('a')], [report('a', 'Unreachable', 'dns_timeout')], same, later);
    expect(conditionOf(failing, 'Ready')?.lastTransitionTime).toBe('2026-11-23T19:01:00Z');
    expect(conditionOf(failing, 'Degraded')?.lastTransitionTime).toBe('2026-11-23T19:00:00Z');
  });
});

describe('aggregateStatus: a spec change not yet applied', () => {
  const pods = [pod('a'), pod('b')];
  const reports = [report('a', 'Reachable'), report('b', 'Reachable', undefined, { originGeneration: 1 })];

  it('is not Ready while a pod runs an older spec, and Degraded only once that outlasts the grace', () => {
    const first = aggregate(pods, reports);
    expect(summary(first)).toMatchObject({ Ready: 'False/SpecNotApplied', Degraded: 'False/AsExpected' });
    expect(conditionOf(first, 'Ready')?.message).toContain('1 pod runs generation 1 of the spec, not 2');
    expect(first.pods?.current).toBe(1);

    const soon = aggregate(pods, reports, first, new Date(NOW.getTime() + SPEC_APPLY_GRACE_MS - 1000));
    expect(summary(soon)).toMatchObject({ Degraded: 'False/AsExpected' });
    const stuck = aggregate(pods, reports, soon, new Date(NOW.getTime() + SPEC_APPLY_GRACE_MS));
    expect(summary(stuck)).toMatchObject({ Ready: 'False/SpecNotApplied', Degraded: 'True/SpecNotApplied' });
    expect(conditionOf(stuck, 'Ready')?.lastTransitionTime).toBe('2026-11-23T19:00:00Z');
  });
});

describe('aggregateStatus: causes, last failure and pods without the sidecar', () => {
  it('groups failing pods by cause, most pods first, ties by name, with a sorted sample', () => {
    const names = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'q0', 'q1', 'r0', 's0', 's1'];
    const causeFor = (n: string) =>
      ({ p: 'connection_refused', q: 'tls_protocol_error', r: 'dns_error', s: 'dns_timeout' })[n[0] as 'p'];
    const s = aggregate(
      names.map((n) => pod(n)),
      names.map((n) => report(n, 'Unreachable', causeFor(n), { failedAt: `2026-11-23T18:5${n[1]}:00Z` })),
    );
    expect(s.causes?.map((c) => [c.cause, c.pods])).toEqual([
      ['connection_refused', 7],
      ['dns_timeout', 2],
      ['tls_protocol_error', 2],
      ['dns_error', 1],
    ]);
    expect(s.causes?.[0]?.samplePods).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    expect(s.causes?.[0]?.lastSeen).toBe('2026-11-23T18:56:00Z');
    expect(s.lastFailure).toMatchObject({
      pod: 'p6',
      cause: 'connection_refused',
      time: '2026-11-23T18:56:00Z',
    });
  });

  it('keeps at most MAX_CAUSES causes', () => {
    const names = Array.from({ length: MAX_CAUSES + 4 }, (_, i) => `p${i}`);
    const s = aggregate(
      names.map((n) => pod(n)),
      names.map((n, i) => report(n, 'Unreachable', `cause_${String.fromCharCode(97 + i)}`)),
    );
    expect(s.causes).toHaveLength(MAX_CAUSES);
    expect(s.pods?.failing).toBe(MAX_CAUSES + 4);
  });

  it('names the Deployment to restart for pods created without the sidecar', () => {
    const owner = { kind: 'ReplicaSet', name: 'shop-edge-5d4f8c9b7' };
    const labels = { app: 'shop-edge', 'pod-template-hash': '5d4f8c9b7' };
    const pods = [pod('shop-edge-5d4f8c9b7-x1', { injected: false, owner, labels }), pod('a')];
    const s = aggregate(pods, [report('a', 'Reachable')]);
    expect(s.notInjected).toMatchObject({ count: 1, samplePods: ['shop-edge-5d4f8c9b7-x1'] });
    expect(s.notInjected?.hint).toContain(
      'restart the workload so its pods are created again with the sidecar, e.g. kubectl rollout restart -n web deployment/shop-edge.',
    );
    expect(summary(s)).toMatchObject({ Ready: 'False/PodsNotInjected', Degraded: 'True/PodsNotInjected' });
  });

  it('names StatefulSets too, and says when pods opted out with the annotation', () => {
    const pods = [
      pod('db-0', { injected: false, owner: { kind: 'StatefulSet', name: 'db' } }),
      pod('solo', { injected: false, annotations: { [INJECT_ANNOTATION]: 'false' } }),
    ];
    const hint = aggregate(pods, []).notInjected?.hint ?? '';
    expect(hint).toContain('2 pods run without the sidecar');
    expect(hint).toContain('kubectl rollout restart -n web statefulset/db.');
    expect(hint).toContain(`1 of them opt out with the annotation ${INJECT_ANNOTATION}: "false"`);
  });
});

// Arbitrary namespaces: pods in any state, reports about them, about gone pods and other Origins.
const CAUSE_POOL = [...CAUSE_NAMES, 'future_cause'];
const podArb = fc.record({
  selected: fc.boolean(),
  injected: fc.boolean(),
  phase: fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed'),
  deleting: fc.boolean(),
});
const reportArb = fc.record({
  pod: fc.nat({ max: 12 }),
  staleUid: fc.boolean(),
  otherOrigin: fc.boolean(),
  health: fc.constantFrom<Health>('Reachable', 'Unreachable', 'Unknown'),
  cause: fc.constantFrom(...CAUSE_POOL),
  generation: fc.integer({ min: 0, max: 3 }),
  minute: fc.integer({ min: 0, max: 59 }),
});
const worldArb = fc.record({
  pods: fc.array(podArb, { maxLength: 10 }),
  reports: fc.array(reportArb, { maxLength: 30 }),
});

type World = typeof worldArb extends fc.Arbitrary<infer T> ? T : never;

function world({ pods, reports }: World): { pods: Pod[]; reports: OriginReport[] } {
  return {
    pods: pods.map((p, i) =>
      pod(`p${i}`, {
        injected: p.injected,
        phase: p.phase,
        deleting: p.deleting,
        labels: p.selected ? { app: 'shop-edge' } : { app: 'other' },
      }),
    ),
    reports: reports.map((r) => {
      const time = `2026-11-23T18:${String(r.minute).padStart(2, '0')}:00Z`;
      return report(`p${r.pod}`, r.health, r.health === 'Unreachable' ? r.cause : undefined, {
        originGeneration: r.generation,
        heartbeatTime: time,
        failedAt: time,
        ...(r.staleUid ? { podUID: `old-${r.pod}` } : {}),
        ...(r.otherOrigin ? { originName: 'cart' } : {}),
      });
    }),
  };
}

describe('aggregateStatus properties', () => {
  it('keeps counts consistent and causes bounded, and the status always fits the CRD schema', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { pods, reports } = world(w);
        const s = aggregate(pods, reports);
        const c = s.pods ?? { selected: 0, injected: 0, current: 0, reachable: 0, failing: 0 };
        expect(c.failing + c.reachable).toBeLessThanOrEqual(c.injected);
        expect(c.current).toBeLessThanOrEqual(c.injected);
        expect(c.injected).toBeLessThanOrEqual(c.selected);
        expect((s.causes ?? []).length).toBeLessThanOrEqual(MAX_CAUSES);
        expect((s.causes ?? []).reduce((n, k) => n + k.pods, 0)).toBeLessThanOrEqual(c.failing);
        for (const k of s.causes ?? []) {
          expect(k.samplePods.length).toBeLessThanOrEqual(MAX_SAMPLE_PODS);
          expect(k.samplePods).toEqual([...k.samplePods].sort());
        }
        expect(s.notInjected?.count ?? 0).toBe(c.selected - c.injected);
        expect(s.reachable).toBe(conditionOf(s, 'Reachable')?.status);
        if (conditionOf(s, 'Ready')?.status === 'True') {
          expect(summary(s)).toMatchObject({
            Reachable: 'True/OriginReachable',
            Degraded: 'False/AsExpected',
          });
          // Every counted report runs the current spec.
          expect(c.current).toBeGreaterThanOrEqual(c.reachable + c.failing);
        }
        expect(s.podsSummary).toBe(`${c.reachable}/${c.selected}`);
        expect([...Value.Errors(OriginStatusSchema, s)]).toEqual([]);
      }),
    );
  });

  it('is idempotent: aggregating again with the result as previous changes nothing, now or a minute later', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { pods, reports } = world(w);
        const first = aggregate(pods, reports);
        expect(statusChanged(first, aggregate(pods, reports, first))).toBe(false);
        const later = aggregate(pods, reports, first, new Date(NOW.getTime() + 60_000));
        expect(statusChanged(first, later)).toBe(false);
        expect(transitionEvents(first, later, 'shop')).toEqual([]);
      }),
    );
  });

  it('turns every cause into a valid condition reason', () => {
    for (const cause of CAUSE_POOL)
      expect(causeReason(cause)).toMatch(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
    expect(causeReason('connection_refused')).toBe('ConnectionRefused');
  });
});
