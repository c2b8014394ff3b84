import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  INJECT_ANNOTATION,
  INJECTED_ANNOTATION,
  SIDECAR_CONTAINER,
  SIDECAR_ENV,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME,
} from '../../src/api/contract.ts';
import type { LabelSelector } from '../../src/api/origin.ts';
import type { JsonPatchOperation, Pod } from '../../src/kube/objects.ts';
import {
  DEFAULT_SIDECAR_TEMPLATE,
  decideInjection,
  type InjectableOrigin,
  type InjectionInput,
  type SidecarTemplate,
} from '../../src/operator/injection.ts';
import { SYSTEM_NAMESPACES } from '../../src/operator/names.ts';

// biome-ignore lint/suspicious/noExplicitAny: the pod after patching is inspected as plain JSON
type Json = any;

/** Walks a JSON Pointer (RFC 6901) to the parent of its last segment. */
function parentOf(root: Json, path: string): { parent: Json; last: string } {
  const parts = path
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = parts.pop();
  if (last === undefined) throw new Error(`cannot patch the root: ${path}`);
  let parent: Json = root;
  for (const p of parts) {
    if (parent === null || typeof parent !== 'object' || !(p in parent)) {
      throw new Error(`${path}: parent does not exist`);
    }
    parent = parent[p];
  }
  if (parent === null || typeof parent !== 'object') throw new Error(`${path}: parent is not a container`);
  return { parent, last };
}

function applyToArray(list: Json[], last: string, op: JsonPatchOperation): void {
  const index = last === '-' ? list.length : Number(last);
  const bound = op.op === 'add' ? list.length : list.length - 1;
  if (!Number.isInteger(index) || index < 0 || index > bound) throw new Error(`${op.path}: bad index`);
  if (op.op === 'add') list.splice(index, 0, structuredClone(op.value));
  else if (op.op === 'replace') list[index] = structuredClone(op.value);
  else throw new Error(`${op.op} ${op.path}: unsupported here`);
}

/** RFC 6902 as the API server applies it (add and replace), strict about missing parents. */
function applyPatch<T>(doc: T, ops: readonly JsonPatchOperation[]): T {
  const root: Json = structuredClone(doc);
  for (const op of ops) {
    const { parent, last } = parentOf(root, op.path);
    if (Array.isArray(parent)) applyToArray(parent, last, op);
    else if (op.op === 'add' || (op.op === 'replace' && last in parent))
      parent[last] = structuredClone(op.value);
    else throw new Error(`${op.op} ${op.path}: unsupported or no such member`);
  }
  return root;
}

const origin = (
  name: string,
  selector: LabelSelector,
  port = 8080,
  namespace = 'shop',
): InjectableOrigin => ({
  metadata: { name, namespace },
  spec: { selector, listen: { port, address: '0.0.0.0' } },
});

const webPod = (extra: Json = {}): Pod => ({
  metadata: { generateName: 'web-7d9f-', labels: { app: 'web' }, ...(extra.metadata ?? {}) },
  spec: { containers: [{ name: 'app', image: 'registry.example/web:1' }], ...(extra.spec ?? {}) } as Json,
});

const EXCLUDED = [...SYSTEM_NAMESPACES, 'originguard-system'];

function input(pod: Pod, over: Partial<InjectionInput> = {}): InjectionInput {
  return {
    namespace: 'shop',
    pod,
    origins: [origin('web', { matchLabels: { app: 'web' } })],
    excludedNamespaces: EXCLUDED,
    template: DEFAULT_SIDECAR_TEMPLATE,
    ...over,
  };
}

/** Decides, applies the patch, and returns the resulting pod; fails if the pod was not injected. */
function inject(pod: Pod, over: Partial<InjectionInput> = {}): Json {
  const d = decideInjection(input(pod, over));
  if (!d.inject) throw new Error(`not injected: ${d.reason}`);
  return applyPatch(pod, d.patch);
}

const sidecarOf = (pod: Json): Json =>
  [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
    (c: Json) => c.name === SIDECAR_CONTAINER,
  );

describe('which pods get the sidecar', () => {
  it('injects a pod an Origin of its namespace selects, naming the Origins', () => {
    const d = decideInjection(
      input(webPod(), {
        origins: [
          origin('web-b', { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] }),
          origin('web-a', { matchLabels: { app: 'web' } }),
          origin('api', { matchLabels: { app: 'api' } }),
        ],
      }),
    );
    expect(d).toMatchObject({ inject: true, origins: ['web-a', 'web-b'] });
  });

  it.each(EXCLUDED)('leaves pods in %s alone (excluded-namespace)', (namespace) => {
    const d = decideInjection(
      input(webPod(), {
        namespace,
        origins: [origin('web', { matchLabels: { app: 'web' } }, 8080, namespace)],
      }),
    );
    expect(d).toEqual({ inject: false, reason: 'excluded-namespace' });
  });

  it('honours the opt-out annotation (opted-out), and only the value "false"', () => {
    const out = webPod({ metadata: { annotations: { [INJECT_ANNOTATION]: 'false' } } });
    expect(decideInjection(input(out))).toEqual({ inject: false, reason: 'opted-out' });
    const other = webPod({ metadata: { annotations: { [INJECT_ANNOTATION]: 'true' } } });
    expect(decideInjection(input(other)).inject).toBe(true);
  });

  it.each(['containers', 'initContainers'])(
    'does not inject twice when %s already holds the sidecar (already-injected)',
    (list) => {
      const pod = webPod();
      const spec = pod.spec as Json;
      spec[list] = [...(spec[list] ?? []), { name: SIDECAR_CONTAINER, image: 'old' }];
      expect(decideInjection(input(pod))).toEqual({ inject: false, reason: 'already-injected' });
    },
  );

  it('skips hostNetwork pods, like Istio (host-network)', () => {
    expect(decideInjection(input(webPod({ spec: { hostNetwork: true } })))).toEqual({
      inject: false,
      reason: 'host-network',
    });
  });

  it('skips pods no Origin selects, and Origins of other namespaces (no-origin-selects)', () => {
    const unlabelled = webPod({ metadata: { labels: { app: 'db' } } });
    expect(decideInjection(input(unlabelled))).toEqual({ inject: false, reason: 'no-origin-selects' });
    const elsewhere = [origin('web', { matchLabels: { app: 'web' } }, 8080, 'other')];
    expect(decideInjection(input(webPod(), { origins: elsewhere }))).toEqual({
      inject: false,
      reason: 'no-origin-selects',
    });
  });

  it('is idempotent: the injected pod is already-injected, in both modes', () => {
    for (const mode of ['native', 'container'] as const) {
      const template = { ...DEFAULT_SIDECAR_TEMPLATE, mode };
      const once = inject(webPod(), { template });
      expect(decideInjection(input(once, { template }))).toEqual({
        inject: false,
        reason: 'already-injected',
      });
    }
  });
});

describe('the injected pod', () => {
  const template: SidecarTemplate = {
    ...DEFAULT_SIDECAR_TEMPLATE,
    adminPort: 9901,
    logLevel: 'debug',
    version: '1.2.3',
  };

  it('runs the sidecar as the first native sidecar, before existing init containers', () => {
    const pod = inject(webPod({ spec: { initContainers: [{ name: 'migrate', image: 'm' }] } }), { template });
    expect(pod.spec.initContainers.map((c: Json) => c.name)).toEqual([SIDECAR_CONTAINER, 'migrate']);
    expect(pod.spec.initContainers[0].restartPolicy).toBe('Always');
    expect(pod.spec.containers.map((c: Json) => c.name)).toEqual(['app']);
  });

  it('appends a plain container in container mode, with no restartPolicy', () => {
    const pod = inject(webPod(), { template: { ...template, mode: 'container' } });
    expect(pod.spec.containers.map((c: Json) => c.name)).toEqual(['app', SIDECAR_CONTAINER]);
    expect(pod.spec.containers[1].restartPolicy).toBeUndefined();
    expect(pod.spec.initContainers).toBeUndefined();
  });

  it('starts `originguard sidecar --cluster` with the template image, port and log level', () => {
    const c = sidecarOf(inject(webPod(), { template }));
    expect(c).toMatchObject({
      image: template.image,
      imagePullPolicy: 'IfNotPresent',
      command: ['originguard'],
      args: ['sidecar', '--cluster', '--admin-port=9901', '--log-level=debug'],
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 9901 } },
      livenessProbe: { httpGet: { path: '/healthz', port: 9901 } },
    });
  });

  it('gives the sidecar its identity from the downward API and its token paths', () => {
    const env = Object.fromEntries(
      sidecarOf(inject(webPod())).env.map((e: Json) => [e.name, e.value ?? e.valueFrom.fieldRef.fieldPath]),
    );
    expect(env).toEqual({
      [SIDECAR_ENV.podName]: 'metadata.name',
      [SIDECAR_ENV.podNamespace]: 'metadata.namespace',
      [SIDECAR_ENV.podUid]: 'metadata.uid',
      [SIDECAR_ENV.serviceAccount]: 'spec.serviceAccountName',
      [SIDECAR_ENV.nodeName]: 'spec.nodeName',
      [SIDECAR_ENV.tokenFile]: `${TOKEN_MOUNT_PATH}/token`,
      [SIDECAR_ENV.caFile]: `${TOKEN_MOUNT_PATH}/ca.crt`,
    });
  });

  it('declares the admin port and each distinct listen port once', () => {
    const origins = [
      origin('a', { matchLabels: { app: 'web' } }, 8443),
      origin('b', { matchLabels: { app: 'web' } }, 8080),
      origin('c', { matchLabels: { app: 'web' } }, 8080),
    ];
    const ports = sidecarOf(inject(webPod(), { origins })).ports;
    expect(ports).toEqual([
      { name: 'og-admin', containerPort: 9901, protocol: 'TCP' },
      { name: 'og-8080', containerPort: 8080, protocol: 'TCP' },
      { name: 'og-8443', containerPort: 8443, protocol: 'TCP' },
    ]);
    for (const p of ports) expect(p.name.length).toBeLessThanOrEqual(15);
  });

  it('runs the sidecar locked down: non-root, read-only root, no privilege escalation, no capabilities', () => {
    expect(sidecarOf(inject(webPod())).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it("projects a pod-bound token, the cluster CA, the namespace and the pod's labels, mounted in the sidecar only", () => {
    const pod = inject(webPod({ spec: { volumes: [{ name: 'data', emptyDir: {} }] } }), {
      template: { ...template, tokenExpirationSeconds: 1800 },
    });
    expect(pod.spec.volumes.map((v: Json) => v.name)).toEqual(['data', TOKEN_VOLUME]);
    expect(pod.spec.volumes[1].projected.sources).toEqual([
      { serviceAccountToken: { path: 'token', expirationSeconds: 1800 } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardAPI: {
          items: [
            { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
            { path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
          ],
        },
      },
    ]);
    expect(sidecarOf(pod).volumeMounts).toEqual([
      { name: TOKEN_VOLUME, mountPath: TOKEN_MOUNT_PATH, readOnly: true },
    ]);
    expect(pod.spec.containers[0].volumeMounts).toBeUndefined();
  });

  it('replaces a copied token volume instead of adding a second one of the same name', () => {
    const pod = inject(webPod({ spec: { volumes: [{ name: TOKEN_VOLUME, emptyDir: {} }] } }));
    expect(pod.spec.volumes).toHaveLength(1);
    expect(pod.spec.volumes[0].projected).toBeDefined();
  });

  it('records the version in an annotation (escaping "/") and keeps existing annotations', () => {
    const bare = inject(webPod(), { template });
    expect(bare.metadata.annotations).toEqual({ [INJECTED_ANNOTATION]: '1.2.3' });
    const annotated = inject(webPod({ metadata: { annotations: { team: 'edge', 'a/b~c': 'x' } } }), {
      template,
    });
    expect(annotated.metadata.annotations).toEqual({
      team: 'edge',
      'a/b~c': 'x',
      [INJECTED_ANNOTATION]: '1.2.3',
    });
  });

  it('never reads the pod name: a generateName pod is injected the same way', () => {
    const named = webPod({ metadata: { name: 'web-0' } });
    const d1 = decideInjection(input(named));
    const d2 = decideInjection(input(webPod()));
    expect(d1.inject && d2.inject && d1.patch).toEqual(d2.inject && d2.patch);
  });
});

describe('the patch, for arbitrary pods', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
  const container = name.map((n) => ({ name: n, image: 'img' }));
  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
  const pod = fc.record(
    {
      metadata: fc.record(
        {
          generateName: maybe(name),
          labels: maybe(fc.dictionary(name, name)),
          annotations: maybe(fc.dictionary(fc.constantFrom('a', 'x/y', 'k~1', INJECTED_ANNOTATION), name)),
        },
        { requiredKeys: [] },
      ),
      spec: fc.record(
        {
          containers: fc.array(container, { minLength: 1, maxLength: 3 }),
          initContainers: maybe(fc.array(container, { maxLength: 3 })),
          // Volume names are unique in a valid pod; a copied spec may already hold the token volume.
          volumes: maybe(
            fc
              .uniqueArray(fc.oneof(name, fc.constant(TOKEN_VOLUME)), { maxLength: 3 })
              .map((ns) => ns.map((n) => ({ name: n }))),
          ),
        },
        { requiredKeys: ['containers'] },
      ),
    },
    { requiredKeys: ['spec'] },
  );
  const everyPod = [origin('all', { matchExpressions: [{ key: 'never', operator: 'DoesNotExist' }] })];

  it('always applies and yields exactly one sidecar and one token volume, keeping every other container', () => {
    fc.assert(
      fc.property(pod, fc.constantFrom('native', 'container' as const), (p, mode) => {
        const template = { ...DEFAULT_SIDECAR_TEMPLATE, mode };
        const d = decideInjection(input(p as Pod, { origins: everyPod, template }));
        const already = [...p.spec.containers, ...(p.spec.initContainers ?? [])].some(
          (c) => c.name === SIDECAR_CONTAINER,
        );
        if (already) return expect(d).toEqual({ inject: false, reason: 'already-injected' });
        if (!d.inject) throw new Error(`not injected: ${d.reason}`);
        const out: Json = applyPatch(p, d.patch);
        const all = [...out.spec.containers, ...(out.spec.initContainers ?? [])];
        expect(all.filter((c: Json) => c.name === SIDECAR_CONTAINER)).toHaveLength(1);
        expect(all).toHaveLength(p.spec.containers.length + (p.spec.initContainers?.length ?? 0) + 1);
        expect(out.spec.volumes.filter((v: Json) => v.name === TOKEN_VOLUME)).toHaveLength(1);
        expect(out.metadata.annotations[INJECTED_ANNOTATION]).toBe(template.version);
        expect(decideInjection(input(out, { origins: everyPod, template })).inject).toBe(false);
      }),
    );
  });
});
