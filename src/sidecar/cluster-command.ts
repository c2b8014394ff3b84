// `originguard sidecar --cluster`, as the operator injects it: identity from the
// downward-API environment, credentials from the projected token volume, the API
// server from KUBERNETES_SERVICE_HOST/PORT, then startClusterSidecar() until a
// signal. Loaded by command.ts only in cluster mode.
import type { Logger } from 'pino';
import { inClusterCredentials, inClusterServer } from '../kube/in-cluster.ts';
import { drainOnSignal } from '../process.ts';
import { Resolver } from '../upstream/resolver.ts';
import { startClusterSidecar } from './cluster.ts';
import { type PodEnvironment, podEnvironment, readLabelsFile } from './pod-identity.ts';
import type { SidecarSettings } from './settings.ts';

const fail = (code: number, message: string): number => {
  process.stderr.write(`originguard sidecar: ${message}\n`);
  return code;
};

export async function runClusterSidecar(settings: SidecarSettings, logger: Logger): Promise<number> {
  let env: PodEnvironment;
  let server: string;
  try {
    env = podEnvironment(process.env, settings.podLabelsFile);
    server = inClusterServer();
  } catch (err) {
    // A missing variable is a broken injection, like a bad flag: exit 2, naming it.
    return fail(2, (err as Error).message);
  }
  let credentials: ReturnType<typeof inClusterCredentials>;
  try {
    credentials = inClusterCredentials({ tokenFile: env.tokenFile, caFile: env.caFile, server });
  } catch (err) {
    return fail(1, `cannot start: ${(err as Error).message}`);
  }
  // Read once here so that a missing file stops the start with its name, not a silent empty selection.
  try {
    await readLabelsFile(env.labelsFile);
  } catch (err) {
    return fail(
      1,
      `cannot start: ${(err as Error).message} (the webhook projects it next to the token; --pod-labels-file or ORIGINGUARD_POD_LABELS_FILE names another file)`,
    );
  }

  let cluster: Awaited<ReturnType<typeof startClusterSidecar>>;
  try {
    cluster = await startClusterSidecar({
      identity: env,
      credentials,
      labels: () => readLabelsFile(env.labelsFile),
      logger,
      resolver: new Resolver(settings.dnsServers.length > 0 ? { servers: settings.dnsServers } : {}),
      limits: settings.limits,
      maxBodyBytes: settings.maxBodyBytes,
      requestBufferMemory: settings.requestBufferMemory,
      ...(settings.listenAddress === undefined ? {} : { listenAddress: settings.listenAddress }),
      admin: { port: settings.adminPort, address: settings.adminAddress },
      reportDebounceMs: settings.reportDebounceMs,
      reportHeartbeatMs: settings.reportHeartbeatMs,
    });
  } catch (err) {
    return fail(
      1,
      `cannot listen on admin port ${settings.adminAddress}:${settings.adminPort}: ${(err as Error).message}`,
    );
  }
  logger.info(
    { pod: env.podName, namespace: env.namespace, apiServer: server, adminPort: cluster.adminPort },
    'sidecar started in cluster mode; waiting for the first list of Origins',
  );
  return drainOnSignal(logger, settings.drainMs, () => cluster.stop(settings.drainMs));
}
