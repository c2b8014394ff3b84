// The cluster the operator benchmark fills: namespaces, Origins spread over them,
// and pods created through the API (so the webhook sees each one) with bounded
// concurrency. Pods look like a Deployment's (labels, annotations, one container
// with env, probes, resources, mounts); every tenth carries the label of an Origin
// of its namespace. Nothing runs them (no kubelet): they stay Pending, which is
// all the operator reads.
import type { OriginStatus } from '../../src/api/status.ts';
import { type KubeClient, resourcePath } from '../../src/kube/client.ts';

export interface Layout {
  namespaces: number;
  origins: number;
  /** One pod in this many is selected by an Origin. */
  selectEvery: number;
}

export const namespaceName = (i: number) => `bench-${i}`;
export const originName = (i: number) => `origin-${i}`;

/** Origin i lives in namespace i mod namespaces and selects pods labelled edge=origin-i. */
export function originNamespace(layout: Layout, i: number): string {
  return namespaceName(i % layout.namespaces);
}

/** The Origin (index) pod `n` is selected by, or undefined. */
export function selectingOrigin(layout: Layout, n: number): number | undefined {
  // Pod n is the m-th of its namespace.
  const ns = n % layout.namespaces;
  const m = Math.floor(n / layout.namespaces);
  if (m % layout.selectEvery !== 0) return undefined;
  // The Origins of namespace ns are ns, ns + namespaces, ...: pick one round-robin.
  const inNs = Math.ceil((layout.origins - ns) / layout.namespaces);
  if (inNs <= 0) return undefined;
  const k = (m / layout.selectEvery) % inNs;
  return ns + k * layout.namespaces;
}

/** How many of the pods 0..count-1 each Origin selects. */
export function expectedSelected(layout: Layout, count: number): number[] {
  const out = new Array<number>(layout.origins).fill(0);
  for (let n = 0; n < count; n++) {
    const o = selectingOrigin(layout, n);
    if (o !== undefined) out[o] = (out[o] ?? 0) + 1;
  }
  return out;
}

export function originManifest(layout: Layout, i: number): object {
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'Origin',
    metadata: { name: originName(i), namespace: originNamespace(layout, i) },
    spec: {
      selector: { matchLabels: { edge: originName(i) } },
      listen: { port: 8080 },
      upstream: { host: `shop-${i}.internal.test`, port: 443, tls: { enabled: true } },
    },
  };
}

/** A pod as a Deployment would create it, about 2.5 KB of JSON before the API server adds its defaults. */
export function podManifest(layout: Layout, n: number, namespace = namespaceName(n % layout.namespaces)) {
  const o = selectingOrigin(layout, n);
  const app = `app-${n % 17}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `pod-${n}`,
      namespace,
      labels: {
        app,
        'app.kubernetes.io/name': app,
        'app.kubernetes.io/part-of': 'bench',
        'pod-template-hash': `7d9f${(n % 97).toString(16)}c5b8`,
        ...(o === undefined ? {} : { edge: originName(o) }),
      },
      annotations: {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9090',
        'kubectl.kubernetes.io/restartedAt': '2026-11-01T10:00:00Z',
      },
    },
    spec: {
      containers: [
        {
          name: 'app',
          image: `registry.example.test/team/${app}:1.4.${n % 7}`,
          ports: [
            { name: 'http', containerPort: 8080, protocol: 'TCP' },
            { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
          ],
          env: [
            { name: 'LOG_LEVEL', value: 'info' },
            { name: 'UPSTREAM_TIMEOUT', value: '30s' },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          ],
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: '/live', port: 'http' }, periodSeconds: 10 },
          volumeMounts: [{ name: 'config', mountPath: '/etc/app', readOnly: true }],
        },
      ],
      volumes: [{ name: 'config', configMap: { name: `${app}-config` } }],
      terminationGracePeriodSeconds: 30,
    },
  };
}

/** Runs `task(i)` for i in [from, to) with at most `concurrency` at a time; returns the elapsed ms. */
export async function runBounded(
  from: number,
  to: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<number> {
  const t0 = performance.now();
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(0, to - from)) }, worker));
  return performance.now() - t0;
}

/** Creates pods n in [from, to) through the API; returns pods per second. */
export async function createPods(
  admin: KubeClient,
  layout: Layout,
  from: number,
  to: number,
  concurrency: number,
  namespace?: (n: number) => string,
): Promise<number> {
  const ms = await runBounded(from, to, concurrency, (n) => {
    const ns = namespace?.(n) ?? namespaceName(n % layout.namespaces);
    return admin.create(
      resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: ns }),
      podManifest(layout, n, ns),
    );
  });
  return ((to - from) / ms) * 1000;
}

/** The last mismatch originsRight() saw, for the message when they never all match. */
export let lastMismatch = '';

/** How many Origins show the expected selected and injected counts. */
export async function originsRight(admin: KubeClient, expected: number[]): Promise<number> {
  const list = await admin.list<{ metadata: { name: string }; status?: OriginStatus }>(
    resourcePath({ group: 'edge.originguard.dev', version: 'v1alpha1', plural: 'origins' }),
  );
  let right = 0;
  for (const o of list.items) {
    const i = /^origin-(\d+)$/.exec(o.metadata.name)?.[1];
    const want = i === undefined ? undefined : expected[Number(i)];
    const pods = o.status?.pods;
    if (want !== undefined && pods?.selected === want && pods.injected === want) right++;
    else if (want !== undefined)
      lastMismatch = `${o.metadata.name}: want ${want}, status ${JSON.stringify(pods)}`;
  }
  return right;
}
