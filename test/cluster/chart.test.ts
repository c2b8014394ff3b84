// charts/originguard against the real control plane: helm lint and template with
// default and non-default values (security context, labels, RBAC equal to the
// builders in src/operator/manifests.ts, the admission policy and webhook shapes,
// the schema's refusals), then install, run the operator as a local process with
// the chart's ServiceAccount token and the chart's Deployment args, upgrade and
// uninstall. The control plane is shared with other test files, so the install
// adopts the CRDs they apply (the documented kubectl-to-Helm migration), names its
// admission policy after the release, leaves the fixed-name sidecar ClusterRole to
// deploy/ (checked with a server dry run instead), restricts its webhook to a label
// no other namespace has, and watches only its own application namespace.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { type OperatorProcess, startOperator } from '../../hack/run-operator.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import { reportLabels, reportName } from '../../src/api/report.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import { sidecarTemplate } from '../../src/operator/command.ts';
import { DEFAULT_SIDECAR_TEMPLATE, decideInjection } from '../../src/operator/injection.ts';
import {
  type Manifest,
  mutatingWebhookConfiguration,
  operatorBindings,
  operatorClusterRole,
  operatorNamespaceRole,
  REPORT_POLICY,
  reportAdmissionPolicy,
  reportAdmissionPolicyBinding,
  sidecarClusterRole,
} from '../../src/operator/manifests.ts';
import { SIDECAR_CLUSTER_ROLE, SYSTEM_NAMESPACES } from '../../src/operator/names.ts';
import {
  applyCrds,
  createNamespace,
  deleteNamespace,
  kubeconfigForToken,
  kubectl,
  kubectlJson,
  kubectlOk,
  waitFor,
} from './fixtures.ts';
import { helm, helmOk } from './helm.ts';

const CHART = new URL('../../charts/originguard', import.meta.url).pathname;
const CRD_NAMES = ['origins.edge.originguard.dev', 'originreports.edge.originguard.dev'];
const repoFile = (p: string) => new URL(`../../${p}`, import.meta.url).pathname;

type Obj = Manifest & {
  metadata: Manifest['metadata'] & { annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
};
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}

/** The operator container of a rendered install. */
function operatorContainer(objs: Obj[]): Container {
  const deployment = find(objs, 'Deployment');
  const container = (deployment.spec as { template: { spec: PodSpec } }).template.spec.containers[0];
  if (container === undefined) throw new Error('no operator container');
  return container;
}
const envOf = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value;

/** V8's heap limit (MiB) in a Node started with these NODE_OPTIONS. */
function heapLimitMiB(nodeOptions: string): number {
  const out = execFileSync(
    process.execPath,
    ['-e', 'process.stdout.write(String(require("node:v8").getHeapStatistics().heap_size_limit))'],
    { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' },
  );
  return Number(out) / 2 ** 20;
}
interface PodSpec {
  securityContext?: Record<string, unknown>;
  containers: Container[];
  initContainers?: Container[];
  volumes?: unknown[];
  affinity?: Record<string, unknown>;
  priorityClassName?: string;
}

const parseObjects = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === 'object' && 'kind' in o);

const find = (objs: Obj[], kind: string, name?: string): Obj => {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (o === undefined) throw new Error(`no ${kind} ${name ?? ''} in ${objs.map((x) => x.kind).join(', ')}`);
  return o;
};

const podSpecOf = (o: Obj): PodSpec | undefined => {
  if (o.kind === 'Pod') return o.spec as unknown as PodSpec;
  const template = (o.spec as { template?: { spec?: PodSpec } } | undefined)?.template;
  return template?.spec;
};

async function template(release: string, namespace: string, args: string[] = []): Promise<Obj[]> {
  return parseObjects(await helmOk(['template', release, CHART, '--namespace', namespace, ...args]));
}

/** Every container: non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp. */
function expectRestricted(objs: Obj[]): void {
  const workloads = objs.filter((o) => podSpecOf(o) !== undefined);
  expect(workloads.map((o) => o.kind).sort()).toEqual(['Deployment', 'Pod']);
  for (const o of workloads) {
    const spec = podSpecOf(o) as PodSpec;
    const pod = spec.securityContext ?? {};
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      const where = `${o.kind} ${o.metadata.name} container ${c.name}`;
      const sc = c.securityContext ?? {};
      expect(sc.runAsNonRoot ?? pod.runAsNonRoot, where).toBe(true);
      expect(sc.readOnlyRootFilesystem, where).toBe(true);
      expect(sc.allowPrivilegeEscalation, where).toBe(false);
      expect((sc.capabilities as { drop?: string[] } | undefined)?.drop, where).toContain('ALL');
      const seccomp = (sc.seccompProfile ?? pod.seccompProfile) as { type?: string } | undefined;
      expect(seccomp?.type, where).toBe('RuntimeDefault');
    }
  }
}

function expectLabels(objs: Obj[], release: string): void {
  for (const o of objs) {
    const where = `${o.kind} ${o.metadata.name}`;
    expect(o.metadata.labels, where).toMatchObject({
      'app.kubernetes.io/name': 'originguard',
      'app.kubernetes.io/instance': release,
      'app.kubernetes.io/managed-by': 'Helm',
      'app.kubernetes.io/part-of': 'originguard',
      'app.kubernetes.io/version': '0.1.0',
      'helm.sh/chart': 'originguard-0.1.0',
    });
  }
}

/** The generated objects of a file (crds/ or deploy/). */
const generated = (file: string): Obj[] => parseObjects(readFileSync(repoFile(file), 'utf8'));

describe('helm chart charts/originguard', () => {
  it('passes helm lint with default and non-default values', async () => {
    await helmOk(['lint', '--strict', CHART]);
    await helmOk([
      'lint',
      '--strict',
      CHART,
      '--set',
      'replicas=3,webhook.failurePolicy=Fail,webhook.timeoutSeconds=10,sidecar.mode=container',
      '--set',
      'networkPolicy.enabled=true,metrics.serviceMonitor.enabled=true,priorityClassName=system-cluster-critical',
      '--set',
      'crds.enabled=false,podDisruptionBudget.enabled=false,webhook.excludedNamespaces={monitoring}',
    ]);
  });

  it('renders the default install: restricted containers, labels, RBAC, policy and webhook as the builders make them', async () => {
    const ns = 'originguard-system';
    const objs = await template('originguard', ns);
    expectLabels(objs, 'originguard');
    expectRestricted(objs);

    // RBAC: the same rules as the builders the operator's own tests use.
    expect(find(objs, 'ClusterRole', 'originguard-operator')).toMatchObject({
      rules: operatorClusterRole('originguard').rules,
    });
    expect(find(objs, 'ClusterRole', 'originguard-operator').rules).toEqual(operatorClusterRole().rules);
    expect(find(objs, 'Role', 'originguard-operator').rules).toEqual(operatorNamespaceRole(ns).rules);
    expect(find(objs, 'ClusterRole', SIDECAR_CLUSTER_ROLE).rules).toEqual(sidecarClusterRole().rules);
    for (const b of operatorBindings(ns, 'originguard-operator')) {
      const rendered = find(objs, b.kind, b.metadata.name);
      expect(rendered.metadata.namespace).toBe(b.metadata.namespace);
      expect({ roleRef: rendered.roleRef, subjects: rendered.subjects }).toEqual({
        roleRef: b.roleRef,
        subjects: b.subjects,
      });
    }
    expect(find(objs, 'ServiceAccount').metadata).toMatchObject({
      name: 'originguard-operator',
      namespace: ns,
    });

    // The admission policy: equal to the builders and to deploy/admission-policy.yaml.
    const policy = find(objs, 'ValidatingAdmissionPolicy', REPORT_POLICY);
    const binding = find(objs, 'ValidatingAdmissionPolicyBinding', REPORT_POLICY);
    expect(policy.spec).toEqual(reportAdmissionPolicy().spec);
    expect(binding.spec).toEqual(reportAdmissionPolicyBinding().spec);
    for (const g of generated('deploy/admission-policy.yaml')) {
      expect(find(objs, g.kind, g.metadata.name).spec).toEqual(g.spec);
    }

    // The webhook: the shape of mutatingWebhookConfiguration(), behind the Service (443 → 9443).
    const webhook = find(objs, 'MutatingWebhookConfiguration', 'originguard');
    expect(webhook.webhooks).toEqual(
      mutatingWebhookConfiguration({
        name: 'originguard',
        clientConfig: {
          service: { name: 'originguard-webhook', namespace: ns, path: '/mutate-pods', port: 443 },
        },
        excludedNamespaces: [...SYSTEM_NAMESPACES, ns],
      }).webhooks,
    );
    const service = find(objs, 'Service', 'originguard-webhook');
    expect(service.spec?.ports).toEqual([
      { name: 'https-webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' },
    ]);

    // CRDs: templates equal to crds/, kept on uninstall.
    for (const g of [...generated(`crds/${CRD_NAMES[0]}.yaml`), ...generated(`crds/${CRD_NAMES[1]}.yaml`)]) {
      const crd = find(objs, 'CustomResourceDefinition', g.metadata.name);
      expect(crd.spec).toEqual(g.spec);
      expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    }

    // The operator: 2 replicas electing a leader, probes, soft anti-affinity, a PDB.
    const deployment = find(objs, 'Deployment', 'originguard-operator');
    const spec = deployment.spec as {
      replicas: number;
      template: { spec: PodSpec & { containers: Record<string, unknown>[] } };
    };
    expect(spec.replicas).toBe(2);
    const container = spec.template.spec.containers[0] as Container & Record<string, unknown>;
    expect(container.args).toContain('--leader-elect');
    expect(container.args).toContain('--webhook-configuration=originguard');
    expect(container.args).toContain('--webhook-service=originguard-webhook');
    expect(container.args).toContain('--webhook-cert-secret=originguard-webhook-cert');
    expect(container.args).toContain('--leader-election-id=originguard-operator');
    expect(container.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'health' } });
    expect(container.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'health' } });
    expect(container.ports).toContainEqual({ name: 'health', containerPort: 8081, protocol: 'TCP' });
    expect(container.ports).toContainEqual({ name: 'webhook', containerPort: 9443, protocol: 'TCP' });
    expect(spec.template.spec.affinity).toHaveProperty(
      'podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution',
    );
    expect(find(objs, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 });

    // Memory sized from docs/operations.md, and V8's heap from the limit: old space = limit − reserve.
    const op = operatorContainer(objs);
    expect(op.resources).toEqual({ requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '256Mi' } });
    const nodeOptions = envOf(op, 'NODE_OPTIONS') ?? '';
    expect(nodeOptions).toBe('--max-old-space-size=156 --max-semi-space-size=8');
    // Node takes both flags from NODE_OPTIONS; old space plus young generation stays under the limit.
    const limit = heapLimitMiB(nodeOptions);
    expect(limit).toBeGreaterThanOrEqual(156);
    expect(limit).toBeLessThan(256 - 48);

    // The sidecar settings the operator reads with --sidecar-config.
    const config = find(objs, 'ConfigMap', 'originguard-sidecar') as Obj & { data: Record<string, string> };
    const file = join(tmpdir(), `og-sidecar-${randomBytes(4).toString('hex')}.yaml`);
    await writeFile(file, config.data['sidecar.yaml'] ?? '');
    expect(sidecarTemplate({ 'sidecar-config': file })).toMatchObject({
      image: 'ghcr.io/originguard/originguard:0.1.0',
      mode: 'native',
    });
    expect(
      objs.filter((o) =>
        ['NetworkPolicy', 'ServiceMonitor', 'PodMonitor', 'PrometheusRule'].includes(o.kind),
      ),
    ).toEqual([]);
    expect(objs.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name)).toEqual([
      'originguard-sidecar',
    ]);
  });

  it('renders non-default values where they belong', async () => {
    const objs = await template('edge', 'edge-system', [
      '--set',
      'replicas=3,webhook.failurePolicy=Fail,webhook.timeoutSeconds=10,sidecar.mode=container',
      '--set',
      'networkPolicy.enabled=true,metrics.serviceMonitor.enabled=true,priorityClassName=system-cluster-critical',
      '--set',
      'crds.keep=false,webhook.excludedNamespaces={monitoring},webhook.namespaceSelector.matchLabels.inject=yes',
      '--set',
      'sidecar.image=registry.example/og:1,operator.watchNamespaces={shop,blog}',
    ]);
    expectLabels(objs, 'edge');
    expectRestricted(objs);
    const webhook = find(objs, 'MutatingWebhookConfiguration', 'edge-originguard');
    expect(webhook.webhooks).toEqual(
      mutatingWebhookConfiguration({
        name: 'edge-originguard',
        clientConfig: {
          service: {
            name: 'edge-originguard-webhook',
            namespace: 'edge-system',
            path: '/mutate-pods',
            port: 443,
          },
        },
        excludedNamespaces: [...SYSTEM_NAMESPACES, 'edge-system', 'monitoring'],
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        extraNamespaceSelector: { matchLabels: { inject: 'yes' } },
      }).webhooks,
    );
    expect(find(objs, 'ClusterRole', 'edge-originguard-operator').rules).toEqual(
      operatorClusterRole('edge-originguard').rules,
    );
    expect(find(objs, 'Role', 'edge-originguard-operator').rules).toEqual(
      operatorNamespaceRole('edge-system', {
        secret: 'edge-originguard-webhook-cert',
        lease: 'edge-originguard-operator',
      }).rules,
    );
    const deployment = find(objs, 'Deployment');
    const spec = deployment.spec as { replicas: number; template: { spec: PodSpec } };
    expect(spec.replicas).toBe(3);
    expect(spec.template.spec.priorityClassName).toBe('system-cluster-critical');
    expect(spec.template.spec.containers[0]?.args).toEqual(
      expect.arrayContaining(['--excluded-namespaces=monitoring', '--watch-namespaces=shop,blog']),
    );
    const config = find(objs, 'ConfigMap') as Obj & { data: Record<string, string> };
    expect(parseYaml(config.data['sidecar.yaml'] ?? '')).toMatchObject({
      image: 'registry.example/og:1',
      mode: 'container',
    });
    find(objs, 'NetworkPolicy');
    find(objs, 'ServiceMonitor');
    for (const name of CRD_NAMES) {
      expect(
        find(objs, 'CustomResourceDefinition', name).metadata.annotations?.['helm.sh/resource-policy'],
      ).toBeUndefined();
    }
    const withoutCrds = await template('edge', 'edge-system', ['--set', 'crds.enabled=false']);
    expect(withoutCrds.some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);

    // The heap follows the memory limit in any unit, or is left to Node.
    const heap = async (...set: string[]) =>
      envOf(
        operatorContainer(
          await template(
            'edge',
            'edge-system',
            set.flatMap((v) => ['--set', v]),
          ),
        ),
        'NODE_OPTIONS',
      );
    expect(await heap('resources.limits.memory=1Gi')).toBe(
      '--max-old-space-size=924 --max-semi-space-size=8',
    );
    expect(await heap('resources.limits.memory=512M')).toBe(
      '--max-old-space-size=388 --max-semi-space-size=8',
    );
    expect(await heap('resources.limits.memory=402653184', 'operator.heap.semiSpaceMiB=16')).toBe(
      '--max-old-space-size=284 --max-semi-space-size=16',
    );
    expect(await heap('resources.limits.memory=512Mi', 'operator.heap.reserveMiB=200')).toBe(
      '--max-old-space-size=312 --max-semi-space-size=8',
    );
    expect(await heap('operator.heap.fromLimit=false')).toBeUndefined();
    expect(await heap('resources.limits=null')).toBeUndefined();
    const tooSmall = await helm(['template', 'edge', CHART, '--set', 'resources.limits.memory=128Mi']);
    expect(tooSmall.code).not.toBe(0);
    expect(tooSmall.stderr).toContain('resources.limits.memory 128Mi leaves 28 MiB of V8 heap');
    const unreadable = await helm(['template', 'edge', CHART, '--set', 'resources.limits.memory=lots']);
    expect(unreadable.stderr).toContain('cannot read "lots" as a memory quantity');
  });

  it('renders cert-manager mode: a Certificate mounted into the operator, the caBundle injected by cert-manager', async () => {
    const objs = await template('cm', 'og', ['--set', 'webhook.certManager.enabled=true']);
    expectRestricted(objs);
    expectLabels(objs, 'cm');
    const certs = objs.filter((o) => o.kind === 'Certificate');
    const serving = certs.find((c) => !(c.spec as { isCA?: boolean }).isCA);
    expect(certs).toHaveLength(2);
    expect(objs.filter((o) => o.kind === 'Issuer')).toHaveLength(2);
    const webhook = objs.find((o) => o.kind === 'MutatingWebhookConfiguration');
    expect(webhook?.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(
      `og/${serving?.metadata.name}`,
    );
    const deployment = objs.find((o) => o.kind === 'Deployment') as Obj;
    const spec = podSpecOf(deployment) as PodSpec;
    const operator = spec.containers[0] as {
      args?: string[];
      volumeMounts?: { name: string; mountPath: string }[];
    };
    expect(operator.args).toContain('--webhook-cert-dir=/etc/originguard/webhook-tls');
    expect(operator.args?.some((a) => a.startsWith('--webhook-cert-secret'))).toBe(false);
    const volume = (spec as { volumes?: { name: string; secret?: { secretName: string } }[] }).volumes?.find(
      (v) => v.name === 'webhook-tls',
    );
    expect(volume?.secret?.secretName).toBe(
      (serving?.spec as { secretName?: string } | undefined)?.secretName,
    );
    // With an issuer of the user's, no self-signed CA is made.
    const own = await template('cm', 'og', [
      '--set',
      'webhook.certManager.enabled=true',
      '--set',
      'webhook.certManager.issuerRef.kind=ClusterIssuer',
      '--set',
      'webhook.certManager.issuerRef.name=corp-ca',
    ]);
    expect(own.filter((o) => o.kind === 'Issuer')).toEqual([]);
    expect(
      (own.find((o) => o.kind === 'Certificate')?.spec as { issuerRef?: unknown } | undefined)?.issuerRef,
    ).toEqual({
      kind: 'ClusterIssuer',
      name: 'corp-ca',
    });
  });

  it('renders the opt-in monitoring: a PodMonitor for the sidecars, the generated rules, the dashboard for Grafana', async () => {
    const rulesFile = parseYaml(
      readFileSync(repoFile('charts/originguard/files/prometheus-rules.yaml'), 'utf8'),
    );
    const dashboardFile = JSON.parse(
      readFileSync(repoFile('charts/originguard/files/grafana-dashboard.json'), 'utf8'),
    );
    const enable =
      'metrics.prometheusRule.enabled=true,metrics.sidecarPodMonitor.enabled=true,dashboards.enabled=true';
    const objs = await template('og', 'monitoring', [
      '--set',
      enable,
      '--set',
      'metrics.prometheusRule.labels.release=kps,metrics.sidecarPodMonitor.labels.release=kps',
    ]);
    expectLabels(objs, 'og');
    // With default values the PrometheusRule carries the rules file as it is (promtool-tested).
    const rule = find(objs, 'PrometheusRule', 'og-originguard');
    expect(rule.metadata.labels).toMatchObject({ release: 'kps' });
    expect(rule.spec).toEqual({ groups: rulesFile.groups });

    // The PodMonitor keeps the port the webhook names on the injected sidecar.
    const podMonitor = find(objs, 'PodMonitor', 'og-originguard-sidecars');
    expect(podMonitor.metadata.labels).toMatchObject({ release: 'kps' });
    const injected = decideInjection({
      namespace: 'shop',
      pod: { metadata: { labels: { app: 'edge' } }, spec: { containers: [{ name: 'app' }] } },
      origins: [
        {
          metadata: { name: 'shop' },
          spec: { selector: { matchLabels: { app: 'edge' } }, listen: { port: 8080, address: '0.0.0.0' } },
        },
      ],
      excludedNamespaces: [],
      template: DEFAULT_SIDECAR_TEMPLATE,
    });
    const patched = injected.inject ? injected.patch[0]?.value : undefined;
    const [container] = (patched ?? []) as { ports: { name: string; containerPort: number }[] }[];
    const adminPort = container?.ports.find((p) => p.containerPort === DEFAULT_SIDECAR_TEMPLATE.adminPort);
    expect(adminPort?.name).toBe('og-admin');
    expect(podMonitor.spec).toEqual({
      namespaceSelector: { any: true },
      selector: {},
      podMetricsEndpoints: [{ port: adminPort?.name, path: '/metrics', interval: '30s' }],
    });

    // The dashboard, labelled for kube-prometheus-stack's Grafana sidecar.
    const dashboard = find(objs, 'ConfigMap', 'og-originguard-dashboard') as Obj & {
      data: Record<string, string>;
    };
    expect(dashboard.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect(JSON.parse(dashboard.data['originguard.json'] ?? '')).toEqual(dashboardFile);

    // Values that change the rules: an alert left out, a routing label, the runbooks elsewhere.
    const custom = await template('og', 'monitoring', [
      '--set',
      enable,
      '--set',
      'metrics.prometheusRule.disabled={OriginguardOriginCauseChanged},metrics.prometheusRule.additionalLabels.team=edge',
      '--set',
      'metrics.prometheusRule.runbookBaseUrl=https://wiki.example/originguard/,dashboards.label=dashboards',
    ]);
    const groups = (find(custom, 'PrometheusRule').spec as { groups: { rules: Record<string, unknown>[] }[] })
      .groups;
    const rules = groups.flatMap((g) => g.rules) as {
      alert: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
    }[];
    expect(rules.map((r) => r.alert)).not.toContain('OriginguardOriginCauseChanged');
    expect(rules).toHaveLength(8);
    for (const r of rules) {
      expect(r.labels.team, r.alert).toBe('edge');
      expect(r.labels.severity, r.alert).toMatch(/^(critical|warning|info)$/);
      expect(r.annotations.runbook_url, r.alert).toContain('https://wiki.example/originguard/');
      expect(r.annotations.runbook_url, r.alert).not.toContain('github.com');
    }
    expect(find(custom, 'ConfigMap', 'og-originguard-dashboard').metadata.labels).toMatchObject({
      dashboards: '1',
    });

    // What the chart renders is still a valid rules file for Prometheus.
    const promtool = await new Promise<string | undefined>((resolve) =>
      execFile('bash', [repoFile('hack/test-binaries.sh'), '--promtool', '--check'], (err, stdout) =>
        resolve(err ? undefined : stdout.trim()),
      ),
    );
    if (promtool === undefined) {
      console.warn(
        '[chart] promtool not built (hack/test-binaries.sh --promtool): rendered rules not checked',
      );
      return;
    }
    const file = join(tmpdir(), `og-rendered-rules-${randomBytes(4).toString('hex')}.yaml`);
    await writeFile(file, stringifyYaml({ groups }));
    const check = await new Promise<string>((resolve, reject) =>
      execFile(promtool, ['check', 'rules', file], (err, stdout, stderr) =>
        err ? reject(new Error(`${stdout}${stderr}`)) : resolve(stdout),
      ),
    );
    expect(check).toMatch(/SUCCESS: 8 rules found/);
  });

  it.each([
    [
      'webhook.certManager.issuerRef.kind=Secret',
      /\/webhook\/certManager\/issuerRef\/kind.*one of 'Issuer', 'ClusterIssuer'/,
    ],
    ['replicas=0', /\/replicas.*minimum: got 0, want 1/],
    ['sidecar.mode=sidecar', /\/sidecar\/mode.*one of 'native', 'container'/],
    ['webhook.failurePolicy=Never', /\/webhook\/failurePolicy.*one of 'Ignore', 'Fail'/],
    ['webhook.timeoutSeconds=31', /\/webhook\/timeoutSeconds.*maximum: got 31, want 30/],
    ['webhook.timeoutSeconds=0', /\/webhook\/timeoutSeconds.*minimum: got 0, want 1/],
    ['replicaCount=2', /additional properties 'replicaCount' not allowed/],
    ['metrics.prometheusRule.disabled={NoSuchAlert}', /\/metrics\/prometheusRule\/disabled\/0.*one of/],
    ['metrics.prometheusRule.additionalLabels.severity=page', /\/metrics\/prometheusRule\/additionalLabels/],
  ])('refuses %s with a clear message', async (value, message) => {
    const r = await helm(['template', 'x', CHART, '--set', value]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });
});

describe('helm install, operator with the chart identity, upgrade, uninstall', () => {
  const release = `og-chart-${randomBytes(3).toString('hex')}`;
  const fullname = `${release}-originguard`;
  const policyName = `${release}.${REPORT_POLICY}`;
  let ns = '';
  let appNs = '';
  let valuesFile = '';
  let operator: OperatorProcess | undefined;
  let installed = false;

  beforeAll(async () => {
    await applyCrds();
    ns = await createNamespace('og-chart');
    appNs = await createNamespace('og-chart-app');
    // The shared control plane already has the CRDs (applied with kubectl by other test
    // files): adopt them into the release, as README.md tells users migrating from crds/.
    for (const crd of CRD_NAMES) {
      await kubectlOk(['label', 'crd', crd, 'app.kubernetes.io/managed-by=Helm', '--overwrite']);
      await kubectlOk([
        'annotate',
        'crd',
        crd,
        `meta.helm.sh/release-name=${release}`,
        `meta.helm.sh/release-namespace=${ns}`,
        '--overwrite',
      ]);
    }
    valuesFile = join(tmpdir(), `${release}-values.yaml`);
    await writeFile(
      valuesFile,
      stringifyYaml({
        // originguard-sidecar is applied from deploy/ by other files; it is checked with a dry run below.
        rbac: { createSidecarClusterRole: false },
        admissionPolicy: { name: policyName },
        operator: { watchNamespaces: [appNs], statusInterval: '200ms' },
        webhook: {
          namespaceSelector: { matchLabels: { 'originguard.dev/chart-test': release } },
          timeoutSeconds: 3,
        },
        sidecar: { mode: 'container' },
      }),
    );
  });

  afterAll(async () => {
    await operator?.stop('SIGKILL');
    if (installed) await helm(['uninstall', release, '--namespace', ns]);
    // Leave the shared CRDs as applyCrds() makes them.
    for (const crd of CRD_NAMES) {
      await kubectl([
        'label',
        'crd',
        crd,
        'app.kubernetes.io/managed-by-',
        'app.kubernetes.io/instance-',
        'app.kubernetes.io/version-',
        'helm.sh/chart-',
      ]);
      await kubectl([
        'annotate',
        'crd',
        crd,
        'meta.helm.sh/release-name-',
        'meta.helm.sh/release-namespace-',
        'helm.sh/resource-policy-',
        'originguard.dev/chart-test-',
      ]);
    }
    if (ns) await deleteNamespace(ns);
    if (appNs) await deleteNamespace(appNs);
  });

  const manifest = async () => parseObjects(await helmOk(['get', 'manifest', release, '--namespace', ns]));

  it('installs: the API server accepts every object', async () => {
    const out = await helmOk([
      'install',
      release,
      CHART,
      '--namespace',
      ns,
      '-f',
      valuesFile,
      '--timeout',
      '60s',
    ]);
    installed = true;
    expect(out).toMatch(/kubectl get origins/);
    const objs = await manifest();
    expect(objs.length).toBeGreaterThan(10);
    for (const o of objs) {
      const args = ['get', o.kind, o.metadata.name];
      if (o.metadata.namespace) args.push('--namespace', o.metadata.namespace);
      expect((await kubectl(args)).code, `${o.kind} ${o.metadata.name}`).toBe(0);
    }
    expect(find(objs, 'ValidatingAdmissionPolicy', policyName).spec).toEqual(reportAdmissionPolicy().spec);
    expect(find(objs, 'ValidatingAdmissionPolicyBinding', policyName).spec).toMatchObject({ policyName });

    // The sidecar ClusterRole this install leaves out: the server accepts it too.
    const sidecarRole = find(await template(release, ns), 'ClusterRole', SIDECAR_CLUSTER_ROLE);
    await kubectlOk(['apply', '--dry-run=server', '--server-side', '--force-conflicts', '-f', '-'], {
      input: JSON.stringify(sidecarRole),
    });
  });

  it('gives the operator enough rights: ready, caBundle filled, Origin status written', async () => {
    const objs = await manifest();
    const deployment = find(objs, 'Deployment', `${fullname}-operator`);
    const container = (deployment.spec as { template: { spec: PodSpec } }).template.spec.containers[0];
    const serviceAccount = (deployment.spec as { template: { spec: { serviceAccountName: string } } })
      .template.spec.serviceAccountName;
    expect(serviceAccount).toBe(`${fullname}-operator`);

    // The chart's args, except what only makes sense in a pod: bind addresses (startOperator
    // binds loopback) and the ConfigMap's mount path (the same file, written locally).
    const config = find(objs, 'ConfigMap', `${fullname}-sidecar`) as Obj & { data: Record<string, string> };
    const sidecarConfig = join(tmpdir(), `${release}-sidecar.yaml`);
    await writeFile(sidecarConfig, config.data['sidecar.yaml'] ?? '');
    const args = (container?.args ?? [])
      .filter((a) => a !== 'operator' && !/^--(metrics|health-probe|webhook)-bind-address=/.test(a))
      .map((a) => (a.startsWith('--sidecar-config=') ? `--sidecar-config=${sidecarConfig}` : a));
    expect(args).toContain('--leader-elect');

    const token = (
      await kubectlOk(['create', 'token', serviceAccount, '--duration=10m'], { namespace: ns })
    ).trim();
    // And its environment: NODE_OPTIONS sizes V8's heap from the memory limit.
    const env = Object.fromEntries(
      (container?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]),
    );
    expect(env.NODE_OPTIONS).toMatch(/^--max-old-space-size=\d+ --max-semi-space-size=\d+$/);
    operator = await startOperator({ kubeconfig: await kubeconfigForToken(token), namespace: ns, args, env });
    try {
      await operator.waitReady(30_000);
      await waitFor(
        async () =>
          (
            await kubectlOk([
              'get',
              'mutatingwebhookconfiguration',
              fullname,
              '-o',
              'jsonpath={.webhooks[0].clientConfig.caBundle}',
            ])
          ).trim() !== '',
        { timeoutMs: 20_000, what: `the caBundle of ${fullname}` },
      );
      // Its own Lease and Secret, by the names the Role allows (ready means the webhook can answer;
      // the election starts once every cache is listed, a moment later).
      await waitFor(
        async () => (await kubectl(['get', 'lease', `${fullname}-operator`], { namespace: ns })).code === 0,
        {
          timeoutMs: 20_000,
          what: `the Lease ${fullname}-operator`,
        },
      );
      await kubectlOk(['get', 'secret', `${fullname}-webhook-cert`], { namespace: ns });

      // An Origin, a selected pod and the report its sidecar would write: status follows.
      await kubectlOk(['apply', '-f', '-'], {
        namespace: appNs,
        input: stringifyYaml({
          apiVersion: 'edge.originguard.dev/v1alpha1',
          kind: 'Origin',
          metadata: { name: 'shop' },
          spec: {
            selector: { matchLabels: { app: 'edge' } },
            listen: { port: 8080 },
            upstream: { host: '127.0.0.1', port: 3000 },
          },
        }),
      });
      await kubectlOk(['apply', '-f', '-'], {
        namespace: appNs,
        input: stringifyYaml({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'edge-a', labels: { app: 'edge' } },
          // As the webhook would leave it (sidecar.mode container); the webhook itself is behind a
          // Service this control plane cannot reach (no kube-proxy), and operator.test.ts covers it.
          spec: {
            containers: [
              { name: 'app', image: 'busybox' },
              { name: SIDECAR_CONTAINER, image: 'ghcr.io/originguard/originguard:0.1.0' },
            ],
          },
        }),
      });
      const pod = await kubectlJson<{ metadata: { name: string; uid: string } }>(['get', 'pod', 'edge-a'], {
        namespace: appNs,
      });
      const now = new Date().toISOString();
      await kubectlOk(['apply', '--server-side', '--field-manager=originguard-sidecar', '-f', '-'], {
        namespace: appNs,
        input: JSON.stringify({
          apiVersion: 'edge.originguard.dev/v1alpha1',
          kind: 'OriginReport',
          metadata: {
            name: reportName('shop', 'edge-a'),
            labels: reportLabels('shop', 'edge-a'),
            ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'edge-a', uid: pod.metadata.uid }],
          },
          status: {
            originName: 'shop',
            podName: 'edge-a',
            podUID: pod.metadata.uid,
            originGeneration: 1,
            health: 'Reachable',
            requests: 3,
            failures: 0,
            lastTransitionTime: now,
            heartbeatTime: now,
            sidecarVersion: '0.1.0',
          },
        }),
      });
      let status: OriginStatus | undefined;
      await waitFor(
        async () => {
          status = (
            await kubectlJson<{ status?: OriginStatus }>(['get', 'origin', 'shop'], { namespace: appNs })
          ).status;
          return status?.pods?.reachable === 1;
        },
        { timeoutMs: 20_000, what: 'the Origin status to count the reachable pod' },
      );
      expect(status?.conditions?.map((c) => c.type)).toEqual(expect.arrayContaining(['Ready', 'Reachable']));
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- operator log ---\n${operator.tail()}`);
    }
  });

  it('upgrades: changed values applied, CRDs updated, caBundle kept', async () => {
    await helmOk([
      'upgrade',
      release,
      CHART,
      '--namespace',
      ns,
      '-f',
      valuesFile,
      '--set',
      `webhook.timeoutSeconds=7,crds.annotations.originguard\\.dev/chart-test=${release}`,
      '--timeout',
      '60s',
    ]);
    const webhook = await kubectlJson<{
      webhooks: { timeoutSeconds: number; clientConfig: { caBundle?: string } }[];
    }>(['get', 'mutatingwebhookconfiguration', fullname]);
    expect(webhook.webhooks[0]?.timeoutSeconds).toBe(7);
    await waitFor(
      async () =>
        (
          await kubectlJson<{ webhooks: { clientConfig: { caBundle?: string } }[] }>([
            'get',
            'mutatingwebhookconfiguration',
            fullname,
          ])
        ).webhooks[0]?.clientConfig.caBundle !== undefined,
      { timeoutMs: 10_000, what: 'the caBundle after the upgrade' },
    );
    for (const crd of CRD_NAMES) {
      const live = await kubectlJson<Obj>(['get', 'crd', crd]);
      expect(live.metadata.annotations?.['originguard.dev/chart-test'], crd).toBe(release);
      expect(live.metadata.annotations?.['helm.sh/resource-policy'], crd).toBe('keep');
    }
  });

  it('uninstalls: no webhook configuration or admission policy left, CRDs kept', async () => {
    const out = await helm(['uninstall', release, '--namespace', ns, '--wait', '--timeout', '60s']);
    expect(out.code, out.stderr).toBe(0);
    installed = false;
    // The operator keeps running: it patches the webhook configuration, never creates one.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const [kind, name] of [
      ['mutatingwebhookconfiguration', fullname],
      ['validatingadmissionpolicy', policyName],
      ['validatingadmissionpolicybinding', policyName],
      ['clusterrole', `${fullname}-operator`],
      ['clusterrolebinding', `${fullname}-operator`],
    ] as const) {
      expect((await kubectl(['get', kind, name])).code, `${kind} ${name}`).not.toBe(0);
    }
    for (const crd of CRD_NAMES) await kubectlOk(['get', 'crd', crd]);
    await operator?.stop();
    operator = undefined;
  });
});
