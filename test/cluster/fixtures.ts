// Helpers for cluster tests. The control plane is started once per run by
// global-setup.ts; these helpers drive it with the real `kubectl`, the way a user
// would, and give every test its own namespace.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, inject } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { reportLabels, reportName } from '../../src/api/report.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import {
  mutatingWebhookConfiguration,
  operatorBindings,
  operatorClusterRole,
  operatorNamespaceRole,
  sidecarClusterRole,
  type WebhookConfigurationOptions,
} from '../../src/operator/manifests.ts';
import { SYSTEM_NAMESPACES } from '../../src/operator/names.ts';

export interface KubectlOptions {
  /** Written to kubectl's stdin (use with `-f -`). */
  input?: string;
  /** Adds `--namespace <ns>`. */
  namespace?: string;
  /** Authenticates with this bearer token instead of the admin identity of the kubeconfig. */
  token?: string;
  /** Kills kubectl after this many ms (default 30 s). */
  timeoutMs?: number;
  /** Another control plane's kubeconfig (e.g. one a test file starts itself); default: the shared one. */
  kubeconfig?: string;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  /** kubectl's exit code; 0 on success. */
  code: number;
}

/** Path of the admin kubeconfig of the shared test control plane. */
export function kubeconfigPath(): string {
  return inject('kubeconfig');
}

/** The kubectl binary the tests use (built with the control plane when available, else `kubectl` on PATH). */
export function kubectlBinary(): string {
  return inject('kubectl');
}

/**
 * Fails the calling test, saying why, when the control plane runs without
 * kube-controller-manager (e.g. envtest binaries from KUBEBUILDER_ASSETS).
 */
export function requireControllerManager(): void {
  if (!inject('controllerManager')) {
    throw new Error(
      'this test needs kube-controller-manager, which the binaries in use lack: ' +
        'unset KUBEBUILDER_ASSETS to build it, or set TEST_ASSET_KUBE_CONTROLLER_MANAGER',
    );
  }
}

/** Runs kubectl against the test control plane. Never throws on a non-zero exit: check `code`. */
export function kubectl(args: readonly string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
  const full = [...args];
  if (opts.namespace !== undefined) full.push('--namespace', opts.namespace);
  // A token on the command line wins over the kubeconfig's credentials.
  if (opts.token !== undefined) full.push('--token', opts.token);
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlBinary(),
      full,
      {
        env: { ...process.env, KUBECONFIG: opts.kubeconfig ?? kubeconfigPath() },
        timeout: opts.timeoutMs ?? 30_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // Spawn failure or timeout, not a kubectl error answer.
          reject(new Error(`kubectl ${full.join(' ')}: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ stdout, stderr, code: error ? Number(error.code) : 0 });
      },
    );
    // kubectl may exit before reading its input (a command that takes none, an early error): the
    // exit code tells, and the write's EPIPE must not surface as an unhandled error of the test run.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs kubectl and returns stdout; throws with kubectl's stderr if it fails. */
export async function kubectlOk(args: readonly string[], opts: KubectlOptions = {}): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) {
    throw new Error(`kubectl ${args.join(' ')} exited ${r.code}:\n${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

/** Runs kubectl with `-o json` and parses the result; throws if it fails. */
export async function kubectlJson<T = unknown>(
  args: readonly string[],
  opts: KubectlOptions = {},
): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'], opts)) as T;
}

/**
 * The injection webhook configuration, calling an operator on 127.0.0.1:`port`,
 * limited to the namespaces labelled `label` (so a test file injects only its
 * own) and never the operator's namespace.
 */
export function applyLoopbackWebhook(o: {
  name: string;
  port: number;
  operatorNamespace?: string;
  label: Record<string, string>;
  extra?: Partial<WebhookConfigurationOptions>;
}): Promise<string> {
  const webhook = mutatingWebhookConfiguration({
    name: o.name,
    clientConfig: { url: `https://127.0.0.1:${o.port}/mutate-pods` },
    excludedNamespaces: [
      ...SYSTEM_NAMESPACES,
      ...(o.operatorNamespace === undefined ? [] : [o.operatorNamespace]),
    ],
    extraNamespaceSelector: { matchLabels: o.label },
    ...o.extra,
  });
  return apply(JSON.stringify(webhook));
}

/** Applies a manifest (YAML or JSON text) with `kubectl apply -f -`; returns kubectl's stdout. */
export function apply(manifest: string, opts: Omit<KubectlOptions, 'input'> = {}): Promise<string> {
  return kubectlOk(['apply', '-f', '-'], { ...opts, input: manifest });
}

/**
 * Creates a uniquely named namespace and waits until its `default` ServiceAccount
 * exists (pods are refused before that). Delete it with deleteNamespace().
 */
export async function createNamespace(prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`.slice(0, 63);
  await kubectlOk(['create', 'namespace', name]);
  if (!inject('controllerManager')) {
    // Without kube-controller-manager nothing creates it; a real cluster would.
    await kubectlOk(['create', 'serviceaccount', 'default'], { namespace: name });
  }
  await waitFor(
    async () => (await kubectl(['get', 'serviceaccount', 'default'], { namespace: name })).code === 0,
    {
      timeoutMs: 30_000,
      what: `ServiceAccount ${name}/default`,
    },
  );
  return name;
}

/** Deletes a namespace without waiting for its contents to be finalized. */
export async function deleteNamespace(name: string): Promise<void> {
  await kubectlOk(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
}

/**
 * Gives each test in the enclosing describe block (or file) a fresh namespace,
 * deleted after the test. Returns a function that gives the current test's namespace.
 *
 *   const ns = useNamespace();
 *   it('...', async () => { await kubectl(['get', 'pods'], { namespace: ns() }) });
 */
export function useNamespace(prefix = 'test'): () => string {
  let current: string | undefined;
  beforeEach(async () => {
    current = await createNamespace(prefix);
  });
  afterEach(async () => {
    if (current !== undefined) await deleteNamespace(current);
    current = undefined;
  });
  return () => {
    if (current === undefined) throw new Error('useNamespace(): only available inside a test');
    return current;
  };
}

export interface PodTokenRequest {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
  /** Token lifetime, e.g. '10m' (the API server's minimum is 10 minutes). */
  duration?: string;
}

/**
 * Requests a service-account token bound to a pod through the TokenRequest API
 * (`kubectl create token --bound-object-kind Pod`), like a projected token volume.
 */
export async function requestPodToken(req: PodTokenRequest): Promise<string> {
  const out = await kubectlOk(
    [
      'create',
      'token',
      req.serviceAccount,
      '--bound-object-kind',
      'Pod',
      '--bound-object-name',
      req.podName,
      '--bound-object-uid',
      req.podUid,
      '--duration',
      req.duration ?? '10m',
    ],
    { namespace: req.namespace },
  );
  return out.trim();
}

/**
 * The rows of `kubectl get` output, column → value. The columns are aligned, so each
 * row is cut where each header starts (a hint holds spaces, a cause may be empty).
 */
export function printedRows(output: string): Record<string, string>[] {
  const [header = '', ...rows] = output.trimEnd().split('\n');
  const starts = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
  return rows.map((row) =>
    Object.fromEntries(starts.map((c, i) => [c.name, row.slice(c.at, starts[i + 1]?.at).trim()])),
  );
}

/** Polls `check` until it returns true; throws naming `what` after the timeout. */
export async function waitFor(
  check: () => Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${opts.timeoutMs ?? 30_000} ms waiting for ${opts.what ?? 'condition'}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

const CRD_NAMES = ['origins.edge.originguard.dev', 'originreports.edge.originguard.dev'];

/** Applies crds/ (server-side, so parallel test files do not conflict) and waits until they serve. */
export async function applyCrds(): Promise<void> {
  await kubectlOk([
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    new URL('../../crds/', import.meta.url).pathname,
  ]);
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...CRD_NAMES.map((c) => `crd/${c}`),
  ]);
}

/** A kubeconfig for the test control plane that authenticates with `token` (e.g. a ServiceAccount's). */
export async function kubeconfigForToken(token: string): Promise<string> {
  const admin = parseYaml(await readFile(kubeconfigPath(), 'utf8')) as {
    clusters: { name: string; cluster: Record<string, string> }[];
  };
  const cluster = admin.clusters[0];
  if (cluster === undefined) throw new Error('the admin kubeconfig has no cluster');
  const file = join(tmpdir(), `og-kubeconfig-${randomBytes(4).toString('hex')}.yaml`);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [cluster],
    users: [{ name: 'token', user: { token } }],
    contexts: [{ name: 'token', context: { cluster: cluster.name, user: 'token' } }],
    'current-context': 'token',
  };
  await writeFile(file, stringifyYaml(config), { mode: 0o600 });
  return file;
}

/**
 * A kubeconfig for the operator's own ServiceAccount `originguard-operator` in
 * `namespace`, with exactly the RBAC the install grants it (the builders of
 * src/operator/manifests.ts). Its ClusterRole is named `clusterRole`, so test
 * files running at once do not share one; delete it when done.
 */
export async function operatorKubeconfig(
  namespace: string,
  opts: { webhookConfiguration: string; clusterRole: string },
): Promise<string> {
  const clusterRole = operatorClusterRole(opts.webhookConfiguration);
  clusterRole.metadata.name = opts.clusterRole;
  const objects = [
    sidecarClusterRole(),
    clusterRole,
    operatorNamespaceRole(namespace),
    ...operatorBindings(namespace, 'originguard-operator', opts.clusterRole),
  ];
  await kubectlOk(['create', 'serviceaccount', 'originguard-operator'], { namespace });
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  });
  const token = (
    await kubectlOk(['create', 'token', 'originguard-operator', '--duration=2h'], { namespace })
  ).trim();
  return kubeconfigForToken(token);
}

/** What a pod's sidecar reports about an Origin. */
export interface ReportState {
  pod: { metadata: { name: string; uid: string } };
  health: 'Reachable' | 'Unreachable';
  cause?: string;
  generation?: number;
  /** The pod's node, as the sidecar reads it from the downward API. */
  nodeName?: string;
  /** What set the health: requests or the sidecar's own checks. */
  source?: 'Traffic' | 'Probe';
  /** Failures counted (default 4 when Unreachable). */
  failures?: number;
  /** The last failure's address (host:port) and hint. */
  address?: string;
  hint?: string;
}

/** The OriginReport the sidecar of `pod` would apply. */
export function reportManifest(namespace: string, origin: string, s: ReportState): Record<string, unknown> {
  const now = new Date().toISOString();
  const failing = s.health === 'Unreachable';
  const cause = s.cause ?? 'connection_refused';
  const failures = s.failures ?? 4;
  const hint = s.hint ?? 'check the origin';
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'OriginReport',
    metadata: {
      name: reportName(origin, s.pod.metadata.name),
      namespace,
      labels: reportLabels(origin, s.pod.metadata.name),
      ownerReferences: [
        { apiVersion: 'v1', kind: 'Pod', name: s.pod.metadata.name, uid: s.pod.metadata.uid },
      ],
    },
    status: {
      originName: origin,
      podName: s.pod.metadata.name,
      podUID: s.pod.metadata.uid,
      ...(s.nodeName === undefined ? {} : { nodeName: s.nodeName }),
      originGeneration: s.generation ?? 1,
      health: s.health,
      ...(s.source === undefined ? {} : { source: s.source }),
      requests: 10,
      failures: failing ? failures : 0,
      ...(failing
        ? {
            cause,
            phase: 'connect',
            hint,
            failuresByCause: { [cause]: failures },
            lastFailure: {
              cause,
              phase: 'connect',
              statusCode: 531,
              ...(s.address === undefined ? {} : { address: s.address }),
              attempts: 1,
              elapsedMs: 2,
              hint,
              time: now,
            },
          }
        : {}),
      lastTransitionTime: now,
      heartbeatTime: now,
      sidecarVersion: '0.1.0',
    },
  };
}

/** Applies reports as the sidecars would (server-side apply, their field manager), in one kubectl run. */
export async function writeReports(namespace: string, origin: string, states: ReportState[]): Promise<void> {
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: states.map((s) => reportManifest(namespace, origin, s)),
  };
  await kubectlOk(['apply', '--server-side', '--field-manager=originguard-sidecar', '-f', '-'], {
    input: JSON.stringify(list),
    timeoutMs: 120_000,
  });
}

/** The Origin's status as the API server has it. */
export async function originStatus(namespace: string, name: string): Promise<OriginStatus | undefined> {
  return (await kubectlJson<{ status?: OriginStatus }>(['get', 'origin', name], { namespace })).status;
}

/** An Origin selecting pods labelled app=<app>. */
export function originYaml(namespace: string, name: string, app: string): string {
  return `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: {matchLabels: {app: ${app}}}
  listen: {port: 8080}
  upstream: {host: 127.0.0.1, port: 3000}
`;
}

/** A plain pod (one busybox container) with these labels; `extra` goes into its metadata. */
export function podYaml(namespace: string, name: string, labels: Record<string, string>, extra = ''): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}, labels: ${JSON.stringify(labels)}${extra}}
spec:
  containers: [{name: app, image: busybox}]
`;
}
