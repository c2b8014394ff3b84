import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type OperatorProbe, Triangulation } from '../../src/api/triangulation.ts';
import { type PodView, type TriangulationInput, triangulate } from '../../src/operator/triangulate.ts';

const now = new Date('2026-11-29T12:00:00Z');
const since = '2026-11-29T11:58:00Z';

function pods(
  spec: Record<string, [total: number, failing: number]>,
  cause = 'connection_timeout',
): PodView[] {
  return Object.entries(spec).flatMap(([node, [total, failing]]) =>
    Array.from({ length: total }, (_, i) => ({
      pod: `${node}-pod-${i}`,
      node,
      failing: i < failing,
      cause: i < failing ? cause : undefined,
      since,
    })),
  );
}

const probe = (result: OperatorProbe['result'], time = '2026-11-29T11:59:00Z'): OperatorProbe => ({
  from: 'originguard-operator-7d9f-x',
  time,
  reason: 'PodsFailing',
  result,
  ...(result === 'Unreachable' ? { cause: 'connection_refused', statusCode: 531 } : {}),
  summary: result === 'Reachable' ? '10.0.0.5:80 accepts connections' : '10.0.0.5:80 refuses connections',
  steps: [],
});

const input = (p: PodView[], more: Partial<TriangulationInput> = {}): TriangulationInput => ({
  pods: p,
  zoneOf: () => undefined,
  probe: undefined,
  allowance: { allowed: true },
  now,
  probeMaxAgeMs: 600_000,
  ...more,
});

describe('triangulate', () => {
  it('says nothing while no pod reports, and None while none fails', () => {
    expect(triangulate(input([]))).toBeUndefined();
    expect(triangulate(input(pods({ a: [3, 0] })))).toMatchObject({
      scope: 'None',
      summary: 'All 3 pods reach the origin.',
    });
  });

  it('blames the origin (or the network in front of it) when every pod fails and the operator fails too', () => {
    const t = triangulate(
      input(pods({ a: [2, 2], b: [2, 2] }, 'connection_refused'), { probe: probe('Unreachable') }),
    );
    expect(t?.scope).toBe('Origin');
    expect(t?.summary).toMatch(
      /^All 4 pods fail \(connection_refused\) and so does the operator from its own pod: the origin itself or the network in front of it/,
    );
    expect(t?.reasoning).toContainEqual(expect.stringContaining('the operator (originguard-operator-7d9f-x'));
  });

  it('names the path from the pods when they all fail while the operator reaches the origin, with DNS named for DNS causes', () => {
    const t = triangulate(input(pods({ a: [3, 3] }), { probe: probe('Reachable') }));
    expect(t?.scope).toBe('PodPath');
    expect(t?.summary).toContain(
      'while the operator reaches the origin: the path from those pods is the problem: a NetworkPolicy on the pods, node egress rules',
    );
    const dns = triangulate(input(pods({ a: [3, 3] }, 'dns_timeout'), { probe: probe('Reachable') }));
    expect(dns?.summary).toContain("the pods' DNS: their dnsPolicy and dnsConfig");
  });

  it('cannot tell the origin from the path without a probe, or with one older than the failure or than the limit', () => {
    const all = pods({ a: [2, 2] });
    expect(triangulate(input(all))?.scope).toBe('AllPods');
    const before = triangulate(input(all, { probe: probe('Reachable', '2026-11-29T11:50:00Z') }));
    expect(before?.scope).toBe('AllPods');
    expect(before?.reasoning).toContainEqual(expect.stringContaining('predates this failure'));
    const old = triangulate(input(all, { probe: probe('Reachable'), probeMaxAgeMs: 30_000 }));
    expect(old?.scope).toBe('AllPods');
    const off = triangulate(
      input(all, { allowance: { allowed: false, why: 'namespace shop has not opted in' } }),
    );
    expect(off?.reasoning).toContainEqual(
      'the operator does not probe this origin: namespace shop has not opted in',
    );
  });

  it('names the node when only its pods fail, all of them', () => {
    const t = triangulate(input(pods({ 'node-a': [3, 3], 'node-b': [4, 0], 'node-c': [3, 0] })));
    expect(t?.scope).toBe('Nodes');
    expect(t?.summary).toMatch(
      /^3\/10 pods fail \(connection_timeout\), all on node node-a, and every pod there/,
    );
    expect(t?.nodes).toEqual([
      { name: 'node-a', pods: 3, failing: 3 },
      { name: 'node-b', pods: 4, failing: 0 },
      { name: 'node-c', pods: 3, failing: 0 },
    ]);
  });

  it('names the zone when whole zones of several nodes fail, where nodes carry the label', () => {
    const zones: Record<string, string> = { a: 'eu-1a', b: 'eu-1a', c: 'eu-1b', d: 'eu-1b' };
    const t = triangulate(
      input(pods({ a: [2, 2], b: [1, 1], c: [2, 0], d: [2, 0] }), { zoneOf: (n) => zones[n] }),
    );
    expect(t?.scope).toBe('Zones');
    expect(t?.summary).toMatch(/^3\/7 pods fail \(connection_timeout\), all in zone eu-1a \(nodes a, b\)/);
    expect(t?.zones).toEqual([
      { name: 'eu-1a', pods: 3, failing: 3 },
      { name: 'eu-1b', pods: 4, failing: 0 },
    ]);
  });

  it("says SomePods, with each node's count, when the failing pods are not whole nodes", () => {
    const t = triangulate(input(pods({ 'node-a': [3, 2], 'node-b': [3, 1] })));
    expect(t?.scope).toBe('SomePods');
    expect(t?.summary).toContain('3/6 pods fail (connection_timeout), on node-a (2/3), node-b (1/3)');
  });

  it('blames a whole node only when the failing pods are exactly the pods of whole nodes (property)', () => {
    const podArb = fc.record({ node: fc.constantFrom('n1', 'n2', 'n3', 'n4'), failing: fc.boolean() });
    fc.assert(
      fc.property(fc.array(podArb, { minLength: 1, maxLength: 40 }), (list) => {
        const views: PodView[] = list.map((p, i) => ({
          pod: `p${i}`,
          node: p.node,
          failing: p.failing,
          cause: p.failing ? 'connection_refused' : undefined,
          since,
        }));
        const t = triangulate(input(views)) as Triangulation;
        expect([...Value.Errors(Triangulation, t)]).toEqual([]);
        const byNode = new Map<string, boolean[]>();
        for (const v of views)
          byNode.set(v.node as string, [...(byNode.get(v.node as string) ?? []), v.failing]);
        const failing = views.filter((v) => v.failing).length;
        const wholeNodes = [...byNode.values()].every((f) => f.every((x) => x) || f.every((x) => !x));
        const expected =
          failing === 0 ? 'None' : failing === views.length ? 'AllPods' : wholeNodes ? 'Nodes' : 'SomePods';
        expect(t.scope).toBe(expected);
        expect((t.nodes ?? []).reduce((n, g) => n + g.pods, 0)).toBe(views.length);
        expect((t.nodes ?? []).reduce((n, g) => n + g.failing, 0)).toBe(failing);
      }),
    );
  });
});
