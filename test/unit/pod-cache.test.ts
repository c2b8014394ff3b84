// The operator caches pods slimmed (slimPod) and every object without
// managedFields: on any input, what it decides from the cache must be what it
// would decide from the full objects the API server sends. Property tests run the
// status aggregation, the sidecar RBAC subjects, the event routing and the
// injection webhook on both forms of the same generated objects.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INJECT_ANNOTATION, INJECTED_ANNOTATION, SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import type { LabelSelector } from '../../src/api/origin.ts';
import type { Health, OriginReport } from '../../src/api/report.ts';
import { selects } from '../../src/api/selector.ts';
import { withoutManagedFields } from '../../src/kube/informer.ts';
import type { PodObject } from '../../src/kube/objects.ts';
import { aggregateStatus } from '../../src/operator/aggregate.ts';
import { DEFAULT_SIDECAR_TEMPLATE, decideInjection } from '../../src/operator/injection.ts';
import { slimPod } from '../../src/operator/pod-cache.ts';
import { sidecarServiceAccounts } from '../../src/operator/rbac-controller.ts';
import type { Origin } from '../../src/operator/resources.ts';
import { NOW, report } from '../support/aggregate-fixtures.ts';

const KEYS = ['app', 'tier', 'edge', 'pod-template-hash'];
const VALUES = ['a', 'b', 'shop', '7d9fc5'];
const labelsArb = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 4 });
const managedFields = [
  { manager: 'kubectl', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': {} } },
];

const selectorArb: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 2 }),
    matchExpressions: fc.array(
      fc.record({
        key: fc.constantFrom(...KEYS),
        operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
        values: fc.array(fc.constantFrom(...VALUES), { maxLength: 2 }),
      }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
) as fc.Arbitrary<LabelSelector>;

const containerNames = fc.array(fc.constantFrom('app', 'proxy', SIDECAR_CONTAINER, 'init'), { maxLength: 3 });

/** A pod as the API server sends it: everything the operator reads, and much it does not. */
const podArb = (i: number): fc.Arbitrary<PodObject> =>
  fc
    .record({
      labels: fc.option(labelsArb, { nil: undefined }),
      annotations: fc.option(
        fc.dictionary(
          fc.constantFrom(INJECT_ANNOTATION, INJECTED_ANNOTATION, 'prometheus.io/scrape', 'other/note'),
          fc.constantFrom('true', 'false', '0.1.0'),
        ),
        { nil: undefined },
      ),
      owners: fc.array(
        fc.record({
          kind: fc.constantFrom('ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'Node'),
          name: fc.constantFrom('shop-7d9fc5', 'shop', 'web-abc'),
          controller: fc.option(fc.boolean(), { nil: undefined }),
        }),
        { maxLength: 2 },
      ),
      deleting: fc.boolean(),
      serviceAccount: fc.option(fc.constantFrom('default', 'edge', 'shop'), { nil: undefined }),
      nodeName: fc.option(fc.constantFrom('node-a', 'node-b'), { nil: undefined }),
      containers: fc.option(containerNames, { nil: undefined }),
      initContainers: fc.option(containerNames, { nil: undefined }),
      phase: fc.option(fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'), {
        nil: undefined,
      }),
      ready: fc.option(fc.constantFrom('True', 'False'), { nil: undefined }),
    })
    .map((p) => {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `pod-${i}`,
          namespace: 'web',
          uid: `uid-pod-${i}`,
          resourceVersion: String(100 + i),
          creationTimestamp: '2026-11-23T18:00:00Z',
          generateName: 'pod-',
          managedFields,
          ...(p.labels === undefined ? {} : { labels: p.labels }),
          ...(p.annotations === undefined ? {} : { annotations: p.annotations }),
          ...(p.owners.length === 0
            ? {}
            : {
                ownerReferences: p.owners.map((o) => ({ apiVersion: 'apps/v1', uid: `u-${o.name}`, ...o })),
              }),
          ...(p.deleting ? { deletionTimestamp: '2026-11-23T18:59:00Z' } : {}),
        },
        spec: {
          ...(p.serviceAccount === undefined ? {} : { serviceAccountName: p.serviceAccount }),
          ...(p.nodeName === undefined ? {} : { nodeName: p.nodeName }),
          ...(p.containers === undefined
            ? {}
            : { containers: p.containers.map((name) => ({ name, image: 'x' })) }),
          ...(p.initContainers === undefined
            ? {}
            : { initContainers: p.initContainers.map((name) => ({ name, image: 'x' })) }),
          volumes: [{ name: 'kube-api-access' }],
        },
        status: {
          ...(p.phase === undefined ? {} : { phase: p.phase }),
          conditions: [
            { type: 'PodScheduled', status: 'True' },
            ...(p.ready === undefined ? [] : [{ type: 'Ready', status: p.ready }]),
          ],
          podIP: '10.0.0.1',
        },
      };
      return pod as PodObject;
    });

const podsArb = fc
  .integer({ min: 0, max: 8 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => podArb(i))));

const originArb = (name: string): fc.Arbitrary<Origin> =>
  fc.record({ selector: selectorArb, generation: fc.integer({ min: 1, max: 3 }) }).map(
    ({ selector, generation }) =>
      ({
        apiVersion: 'edge.originguard.dev/v1alpha1',
        kind: 'Origin',
        metadata: {
          name,
          namespace: 'web',
          uid: 'origin-uid',
          generation,
          resourceVersion: '7',
          managedFields,
        },
        spec: {
          selector,
          listen: { port: name === 'shop' ? 8080 : 9090 },
          upstream: { host: 'origin.internal.test', port: 443 },
        },
      }) as unknown as Origin,
  );

const reportsArb = (pods: readonly PodObject[]) =>
  fc
    .array(
      fc.record({
        pod: fc.nat({ max: Math.max(0, pods.length - 1) }),
        health: fc.constantFrom<Health>('Reachable', 'Unreachable', 'Unknown'),
        cause: fc.constantFrom(undefined, 'connection_refused', 'dns_error', 'connection_timeout'),
        generation: fc.integer({ min: 1, max: 3 }),
      }),
      { maxLength: 10 },
    )
    .map((rs): OriginReport[] =>
      pods.length === 0
        ? []
        : rs.map((r) => report(`pod-${r.pod}`, r.health, r.cause, { originGeneration: r.generation })),
    );

const worldArb = fc
  .record({ pods: podsArb, shop: originArb('shop'), blog: originArb('blog') })
  .chain((w) => reportsArb(w.pods).map((reports) => ({ ...w, reports })));

describe('slimPod', () => {
  it('keeps only what the operator reads: no managedFields, spec or status beyond it, no other annotations', () => {
    const [full] = fc.sample(podArb(0), { numRuns: 1, seed: 7 });
    const withEverything = {
      ...full,
      metadata: {
        ...full?.metadata,
        name: 'pod-0',
        annotations: { [INJECT_ANNOTATION]: 'false', 'prometheus.io/scrape': 'true' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'shop-7d9fc5', uid: 'u', controller: true },
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'u2' },
        ],
      },
      spec: {
        ...full?.spec,
        containers: [{ name: 'app', image: 'x' }],
        initContainers: [{ name: SIDECAR_CONTAINER }],
      },
      status: {
        phase: 'Running',
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'PodScheduled', status: 'True' },
        ],
      },
    } as unknown as PodObject;
    const slim = slimPod(structuredClone(withEverything));
    expect(slim.metadata).not.toHaveProperty('managedFields');
    expect(slim.metadata).not.toHaveProperty('creationTimestamp');
    expect(slim.metadata.annotations).toEqual({ [INJECT_ANNOTATION]: 'false' });
    expect(slim.metadata.ownerReferences).toEqual([
      { kind: 'ReplicaSet', name: 'shop-7d9fc5', controller: true },
    ]);
    expect(slim.spec).toEqual({
      ...(withEverything.spec?.serviceAccountName
        ? { serviceAccountName: withEverything.spec.serviceAccountName }
        : {}),
      ...(withEverything.spec?.nodeName ? { nodeName: withEverything.spec.nodeName } : {}),
      initContainers: [{ name: SIDECAR_CONTAINER }],
    });
    expect(slim.status).toEqual({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
    expect(JSON.stringify(slim).length).toBeLessThan(JSON.stringify(withEverything).length / 2);
  });

  it('aggregates the same status from slimmed pods and cached Origins as from the full objects', () => {
    fc.assert(
      fc.property(worldArb, ({ pods, shop, reports }) => {
        const input = (p: readonly PodObject[], origin: Origin) => ({
          origin: origin as Parameters<typeof aggregateStatus>[0]['origin'],
          pods: p,
          reports,
          previous: undefined,
          now: NOW,
        });
        const full = aggregateStatus(input(pods, shop));
        const cached = aggregateStatus(
          input(
            pods.map((p) => slimPod(structuredClone(p))),
            withoutManagedFields(structuredClone(shop)),
          ),
        );
        expect(cached).toEqual(full);
      }),
      { numRuns: 500 },
    );
  });

  it('grants the sidecar RoleBinding to the same service accounts and routes pod events to the same Origins', () => {
    fc.assert(
      fc.property(worldArb, ({ pods, shop, blog }) => {
        const slim = pods.map((p) => slimPod(structuredClone(p)));
        expect(sidecarServiceAccounts([shop, blog], slim)).toEqual(
          sidecarServiceAccounts([shop, blog], pods),
        );
        for (const [i, p] of pods.entries()) {
          for (const o of [shop, blog]) {
            expect(selects(o.spec.selector, slim[i]?.metadata.labels)).toBe(
              selects(o.spec.selector, p.metadata.labels),
            );
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('injects the same way from the cached Origins as from the full ones', () => {
    fc.assert(
      fc.property(worldArb, ({ pods, shop, blog }) => {
        const decide = (origins: Origin[], pod: PodObject) =>
          decideInjection({
            namespace: 'web',
            pod,
            origins: origins as unknown as Parameters<typeof decideInjection>[0]['origins'],
            excludedNamespaces: ['kube-system'],
            template: DEFAULT_SIDECAR_TEMPLATE,
          });
        const cached = [shop, blog].map((o) => withoutManagedFields(structuredClone(o)));
        for (const pod of pods) expect(decide(cached, pod)).toEqual(decide([shop, blog], pod));
      }),
      { numRuns: 300 },
    );
  });
});
