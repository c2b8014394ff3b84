// `kubectl originguard` as users run it: the real kubectl finds the plugin on
// PATH and runs it against the test control plane. An Origin with pods, their
// OriginReports and the Origin's status are real API objects; the plugin reads
// them with the documented read-only Role, diagnoses the Origin's upstream (a
// closed port on this machine) and shows the pods' view first.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { EXIT } from '../../src/diagnose/diagnosis.ts';
import { expectValidDiagnosis } from '../support/diagnosis.ts';
import { closedPort } from '../support/origins.ts';
import {
  apply,
  applyCrds,
  createNamespace,
  deleteNamespace,
  kubeconfigForToken,
  kubeconfigPath,
  kubectl,
  kubectlJson,
  kubectlOk,
  podYaml,
  type ReportState,
  reportManifest,
  writeReports,
} from './fixtures.ts';

const CLI = new URL('../../src/main.ts', import.meta.url).pathname;
const originalPath = process.env.PATH;
let pluginDir = '';
let ns = '';
let port = 0;

/** The plugin as kubectl runs it: an executable named kubectl-originguard on PATH (here, the sources). */
async function installPlugin(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'og-plugin-'));
  const file = join(dir, 'kubectl-originguard');
  await writeFile(file, `#!${process.execPath}\nawait import(${JSON.stringify(CLI)});\n`);
  await chmod(file, 0o755);
  return dir;
}

/** What each pod's sidecar reports: the origin refuses its connections. */
function refusing(pod: { metadata: { name: string; uid: string } }): ReportState {
  return {
    pod,
    health: 'Unreachable',
    cause: 'connection_refused',
    nodeName: `node-${pod.metadata.name.slice(-1)}`,
    source: 'Traffic',
    failures: 7,
    address: `127.0.0.1:${port}`,
    hint: 'Nothing accepts connections on the origin port',
  };
}

beforeAll(async () => {
  pluginDir = await installPlugin();
  process.env.PATH = `${pluginDir}:${dirname(process.execPath)}:${originalPath ?? ''}`;
  await applyCrds();
  ns = await createNamespace('plugin');
  port = await closedPort();
  await apply(`apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: shop-edge}}
  listen: {port: 8080}
  upstream: {host: 127.0.0.1, port: ${port}}
  timeouts: {connect: 1s, response: 2s}
`);
  for (const pod of ['edge-a', 'edge-b']) await apply(podYaml(ns, pod, { app: 'shop-edge' }));
  const pods = await kubectlJson<{ items: { metadata: { name: string; uid: string } }[] }>(['get', 'pods'], {
    namespace: ns,
  });
  await writeReports(ns, 'shop', pods.items.map(refusing));
  const edgeA = pods.items.find((p) => p.metadata.name === 'edge-a');
  if (edgeA === undefined) throw new Error('pod edge-a was not created');
  const now = new Date().toISOString();
  const status = {
    reachable: 'False',
    cause: 'connection_refused',
    hint: 'Nothing accepts connections on the origin port',
    podsSummary: '0/2',
    observedGeneration: 1,
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: 'OriginUnreachable',
        message: '0/2 pods reach the origin',
        lastTransitionTime: now,
        observedGeneration: 1,
      },
    ],
    lastFailure: {
      ...(reportManifest(ns, 'shop', refusing(edgeA)).status as { lastFailure: object }).lastFailure,
      pod: 'edge-a',
    },
  };
  await kubectlOk(
    ['patch', 'origin', 'shop', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })],
    {
      namespace: ns,
    },
  );
}, 120_000);

afterAll(async () => {
  process.env.PATH = originalPath;
  if (ns !== '') await deleteNamespace(ns);
  if (pluginDir !== '') await rm(pluginDir, { recursive: true, force: true });
});

describe('kubectl originguard', () => {
  it('is found by kubectl as a plugin and shows its help', async () => {
    expect((await kubectlOk(['plugin', 'list'])).includes(join(pluginDir, 'kubectl-originguard'))).toBe(true);
    const help = await kubectl(['originguard', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: kubectl originguard <command> [options]');
  });

  it('diagnoses origin/NAME from the cluster: the pods report first, and this machine sees the same', async () => {
    const r = await kubectl(['originguard', 'diagnose', 'origin/shop', '-n', ns]);
    expect(r.code, r.stderr).toBe(EXIT.refused);
    expect(r.stdout).toContain(`Diagnosing Origin ${ns}/shop: 127.0.0.1:${port}`);
    expect(r.stdout).toContain('✗ connection_refused → the sidecar answers 531');
    expect(r.stdout).toContain(
      `the Origin's sidecars report connection_refused on 2 pod(s) (0/2 pods reachable); this machine sees the same: 127.0.0.1:${port} refuses connections: nothing listens on port ${port}`,
    );
    expect(r.stdout).toMatch(
      /pod edge-a: Unreachable connection_refused since \S+, last 531 connection_refused 127\.0\.0\.1:\d+ at /,
    );
    const json = await kubectl(['originguard', 'diagnose', 'origin/shop', '-n', ns, '-o', 'json']);
    const d = expectValidDiagnosis(JSON.parse(json.stdout));
    expect(d.verdict).toMatchObject({ source: 'sidecars', cause: 'connection_refused', statusCode: 531 });
    expect(d.sidecars?.pods.map((p) => [p.pod, p.health])).toEqual([
      ['edge-a', 'Unreachable'],
      ['edge-b', 'Unreachable'],
    ]);
    expect(d.target).toMatchObject({ origin: { namespace: ns, name: 'shop' }, connectTimeoutMs: 1000 });
  });

  it('shows status: the Origin, which pods fail with which cause since when, and the hint', async () => {
    const r = await kubectl(['originguard', 'status', '-n', ns]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Origin ${ns}/shop → 127.0.0.1:${port}`);
    expect(r.stdout).toContain('Reachable: False   Cause: connection_refused   Pods reachable: 0/2');
    expect(r.stdout).toContain('Hint: Nothing accepts connections on the origin port');
    expect(r.stdout).toMatch(/POD +NODE +HEALTH +BY +CAUSE +SINCE +FAILURES +LAST FAILURE/);
    expect(r.stdout).toMatch(
      new RegExp(
        `edge-a +node-a +Unreachable +traffic +connection_refused +\\d+s +7 +531 127\\.0\\.0\\.1:${port} \\d+s ago`,
      ),
    );
    const one = JSON.parse(
      (await kubectlOk(['originguard', 'status', 'origin/shop', '-n', ns, '-o', 'json'])).toString(),
    ) as {
      kind: string;
      items: { name: string; pods: { pod: string }[] }[];
    };
    expect(one.kind).toBe('OriginStatusList');
    expect(one.items.map((i) => [i.name, i.pods.length])).toEqual([['shop', 2]]);
    expect((await kubectlOk(['originguard', 'status', '-A'])).includes(`Origin ${ns}/shop`)).toBe(true);
    const missing = await kubectl(['originguard', 'status', 'origin/nope', '-n', ns]);
    expect(missing.code).toBe(EXIT.clusterUnavailable);
    expect(missing.stderr).toContain(`Origin ${ns}/nope not found`);
  });

  it('takes the namespace from --context, as kubectl does', async () => {
    const config = parseYaml(await readFile(kubeconfigPath(), 'utf8')) as {
      contexts: { name: string; context: Record<string, string> }[];
    };
    const base = config.contexts[0];
    if (base === undefined) throw new Error('the admin kubeconfig has no context');
    config.contexts.push({ name: 'plugin-ctx', context: { ...base.context, namespace: ns } });
    const file = join(pluginDir, 'kubeconfig');
    await writeFile(file, stringifyYaml(config), { mode: 0o600 });
    const r = await kubectl(['originguard', 'status', '--context', 'plugin-ctx', '--kubeconfig', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Origin ${ns}/shop`);
  });

  it('works with the read-only Role of docs/diagnose.md, and without OriginReports says what it misses', async () => {
    const doc = await readFile(new URL('../../docs/diagnose.md', import.meta.url), 'utf8');
    const role = /```yaml\n(apiVersion: rbac\.authorization\.k8s\.io\/v1\nkind: Role\n[\s\S]*?)```/.exec(
      doc,
    )?.[1];
    if (role === undefined) throw new Error('docs/diagnose.md has no Role');
    const viewerRole = parseYaml(role) as {
      metadata: { namespace: string };
      rules: { resources: string[] }[];
    };
    viewerRole.metadata.namespace = ns;
    const originsOnly = structuredClone(viewerRole) as typeof viewerRole & { metadata: { name: string } };
    originsOnly.metadata.name = 'origins-only';
    for (const rule of originsOnly.rules) rule.resources = ['origins'];
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [viewerRole, originsOnly] }));
    const tokenFor = async (sa: string, roleName: string) => {
      await kubectlOk(['create', 'serviceaccount', sa], { namespace: ns });
      await kubectlOk(['create', 'rolebinding', sa, `--role=${roleName}`, `--serviceaccount=${ns}:${sa}`], {
        namespace: ns,
      });
      return kubeconfigForToken((await kubectlOk(['create', 'token', sa], { namespace: ns })).trim());
    };
    const viewer = await tokenFor('viewer', 'originguard-viewer');
    const limited = await tokenFor('limited', 'origins-only');

    const status = await kubectl(['originguard', 'status', '-n', ns], { kubeconfig: viewer });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('edge-a');
    const d = await kubectl(['originguard', 'diagnose', 'origin/shop', '-n', ns, '-o', 'json'], {
      kubeconfig: viewer,
    });
    expect(expectValidDiagnosis(JSON.parse(d.stdout)).sidecars?.pods).toHaveLength(2);

    const partial = await kubectl(['originguard', 'diagnose', 'origin/shop', '-n', ns, '-o', 'json'], {
      kubeconfig: limited,
    });
    expect(partial.code).toBe(EXIT.refused);
    const p = expectValidDiagnosis(JSON.parse(partial.stdout));
    expect(p.sidecars?.pods).toEqual([]);
    expect(p.vantage.limits.join('\n')).toContain("the sidecars' OriginReports could not be read");
    const refused = await kubectl(['originguard', 'status', '-n', ns], { kubeconfig: limited });
    expect(refused.code).toBe(EXIT.clusterUnavailable);
    expect(refused.stderr).toContain(
      'forbidden (403): your identity needs get and list on origins and originreports',
    );
  });
});
