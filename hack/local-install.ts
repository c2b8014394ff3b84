// Installs originguard on a local control plane the way the Helm chart will in a
// cluster, except that the operator runs as a process on loopback: crds/ and
// deploy/, the operator's namespace, ServiceAccount and least-privilege RBAC, a
// MutatingWebhookConfiguration whose clientConfig.url is the process, and the
// operator itself, started with a token of that ServiceAccount. Used by the e2e
// test and `npm run playground`.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  mutatingWebhookConfiguration,
  operatorBindings,
  operatorNamespaceRole,
} from '../src/operator/manifests.ts';
import { DEFAULT_WEBHOOK_CONFIGURATION, SYSTEM_NAMESPACES } from '../src/operator/names.ts';
import { type ControlPlane, kubeconfigYaml } from './control-plane.ts';
import { freePort } from './net.ts';
import { type OperatorProcess, type OperatorProcessOptions, startOperator } from './run-operator.ts';

const repo = new URL('../', import.meta.url);
const OPERATOR_SA = 'originguard-operator';

export interface LocalInstallOptions {
  /** Default originguard-system. */
  operatorNamespace?: string;
  /** More flags for `originguard operator`. */
  operatorArgs?: string[];
  /** Lifetime of the operator's token (default 24h; the playground may run long). */
  tokenDuration?: string;
  /** How to run the operator process (default: the TypeScript sources, debug logs). */
  process?: Pick<OperatorProcessOptions, 'command' | 'env' | 'logLevel'>;
}

export interface LocalInstall {
  /** The operator process running now (a new one after restart()). */
  readonly operator: OperatorProcess;
  operatorNamespace: string;
  webhookConfiguration: string;
  /** The kubeconfig with the operator's own token. */
  operatorKubeconfig: string;
  /** Stops the operator (SIGTERM) and starts it again with the same flags and webhook port; does not wait for ready. */
  restart(): Promise<OperatorProcess>;
  /** Stops the operator (SIGTERM). The objects stay; they go with the control plane. */
  stop(): Promise<void>;
}

/** Runs kubectl against `cp` as its admin; throws with kubectl's stderr if it fails. */
export function kubectlFor(cp: Pick<ControlPlane, 'kubeconfig' | 'binaries'>) {
  return (args: readonly string[], input?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = execFile(
        cp.binaries.kubectl,
        args,
        { env: { ...process.env, KUBECONFIG: cp.kubeconfig }, timeout: 60_000, maxBuffer: 32 << 20 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`kubectl ${args.join(' ')}: ${stderr.trim() || error.message}`));
          else resolve(stdout);
        },
      );
      child.stdin?.end(input ?? '');
    });
}

/** Polls `check` every 200 ms until true; throws naming `what` after `timeoutMs`. */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Creates a namespace (if missing) and waits for its default ServiceAccount, without which pods are refused. */
export async function ensureNamespace(cp: ControlPlane, name: string): Promise<void> {
  const kubectl = kubectlFor(cp);
  await kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }),
  );
  await pollUntil(`ServiceAccount ${name}/default`, async () => {
    await kubectl(['get', 'serviceaccount', 'default', '--namespace', name]);
    return true;
  });
}

export async function installLocally(
  cp: ControlPlane,
  opts: LocalInstallOptions = {},
): Promise<LocalInstall> {
  const kubectl = kubectlFor(cp);
  const namespace = opts.operatorNamespace ?? 'originguard-system';
  const webhookConfiguration = DEFAULT_WEBHOOK_CONFIGURATION;
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', new URL('crds/', repo).pathname]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', new URL('deploy/', repo).pathname]);
  await ensureNamespace(cp, namespace);

  // The operator's identity: what the chart's ServiceAccount and bindings give it, nothing more.
  const objects = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: OPERATOR_SA, namespace } },
    operatorNamespaceRole(namespace),
    ...operatorBindings(namespace, OPERATOR_SA),
  ];
  await kubectl(
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
  const token = (
    await kubectl([
      'create',
      'token',
      OPERATOR_SA,
      '--namespace',
      namespace,
      `--duration=${opts.tokenDuration ?? '24h'}`,
    ])
  ).trim();
  const operatorKubeconfig = join(cp.dir, 'operator.kubeconfig');
  await writeFile(operatorKubeconfig, kubeconfigYaml(cp.server, cp.caFile, token), { mode: 0o600 });

  // The API server calls the operator's webhook on loopback; the operator fills in the caBundle.
  const webhookPort = await freePort();
  const webhook = mutatingWebhookConfiguration({
    name: webhookConfiguration,
    clientConfig: { url: `https://127.0.0.1:${webhookPort}/mutate-pods` },
    excludedNamespaces: [...SYSTEM_NAMESPACES, namespace],
  });
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(webhook));

  const processOptions: OperatorProcessOptions = {
    ...opts.process,
    kubeconfig: operatorKubeconfig,
    namespace,
    webhookPort,
    args: [
      `--webhook-configuration=${webhookConfiguration}`,
      '--log-level=info',
      ...(opts.operatorArgs ?? []),
    ],
  };
  let operator = await startOperator(processOptions);
  try {
    await operator.waitReady(60_000);
    // The webhook fails open: a pod created before the API server trusts it would go uninjected.
    await pollUntil('the webhook caBundle', async () => {
      const bundle = await kubectl([
        'get',
        'mutatingwebhookconfiguration',
        webhookConfiguration,
        '-o',
        'jsonpath={.webhooks[0].clientConfig.caBundle}',
      ]);
      return bundle.trim() !== '';
    });
  } catch (err) {
    await operator.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- operator log ---\n${operator.tail()}`);
  }
  return {
    get operator() {
      return operator;
    },
    operatorNamespace: namespace,
    webhookConfiguration,
    operatorKubeconfig,
    async restart() {
      await operator.stop('SIGTERM');
      operator = await startOperator(processOptions);
      return operator;
    },
    async stop() {
      await operator.stop('SIGTERM');
    },
  };
}
