// The sidecar in a pod: watches the Origins of its namespace, serves those that
// select its pod's labels (applied live, like a config-file change), and writes
// one OriginReport per served Origin. Only the thin kube layer (undici, already
// loaded for proxying) is used: @kubernetes/client-node would cost every pod
// about 90 MB and half a second. startClusterSidecar() is the programmatic entry
// (several can run in one process: see listenAddress and admin); the command
// (cluster-command.ts) adds environment, signals and exit codes.
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { SIDECAR_FIELD_MANAGER } from '../api/contract.ts';
import { GROUP, VERSION } from '../api/origin.ts';
import type { OriginReport } from '../api/report.ts';
import { type Credentials, KubeClient, resourcePath } from '../kube/client.ts';
import { isUnreachable } from '../kube/errors.ts';
import { Informer } from '../kube/informer.ts';
import { Resolver } from '../upstream/resolver.ts';
import { createAdminServer } from './admin.ts';
import type { ClientLimits } from './listener.ts';
import { SidecarMetrics } from './metrics.ts';
import type { Labels, PodIdentity } from './pod-identity.ts';
import { type ReportApi, type ReportState, ReportWriter } from './report-writer.ts';
import { type OriginObject, SelectionLoop } from './selection-loop.ts';
import { DEFAULT_LIMITS, SIDECAR_DEFAULTS } from './settings.ts';
import { Sidecar } from './sidecar.ts';

export interface ClusterSidecarOptions {
  readonly identity: PodIdentity;
  /** API server address, token and CA: inClusterCredentials() in a pod. */
  readonly credentials: Credentials;
  /** The pod's labels, or how to read them: re-read on every Origin spec change and every labelsPollMs. */
  readonly labels: Labels | (() => Labels | Promise<Labels>);
  readonly logger: Logger;
  /** Shared by several sidecars in one process, their metrics add up; default: a registry of its own. */
  readonly metrics?: SidecarMetrics;
  readonly resolver?: Resolver;
  readonly limits?: ClientLimits;
  readonly maxBodyBytes?: number;
  /** Memory for request bodies received before forwarding (default 16 MiB). */
  readonly requestBufferMemory?: number;
  /** Bind every Origin's listener on this address instead of spec.listen.address (one 127.0.0.x per in-process sidecar). */
  readonly listenAddress?: string;
  /** Serve /healthz, /readyz, /metrics, /status here (port 0: any free port); omitted: no admin server. */
  readonly admin?: { readonly port: number; readonly address: string };
  readonly reportDebounceMs?: number;
  readonly reportHeartbeatMs?: number;
  /** How often the labels are re-read without an Origin change (default 10 s). */
  readonly labelsPollMs?: number;
  /** Restart a watch that delivered nothing for this long (default 90 s). */
  readonly watchStallTimeoutMs?: number;
}

export interface ClusterStatus {
  readonly pod: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly apiServerUp: boolean;
  readonly synced: boolean;
  readonly reports: ReportState[];
}

export interface ClusterSidecar {
  readonly sidecar: Sidecar;
  readonly metrics: SidecarMetrics;
  /** Port the admin server listens on, if it runs. */
  readonly adminPort: number | undefined;
  /** Ready: the first list of Origins was applied and every port is bound. */
  readonly ready: boolean;
  /** Resolves once the first list of Origins has been applied. */
  readonly firstApplied: Promise<void>;
  /** Origins selecting the pod that are not served as they are, one line each. */
  errors(): readonly string[];
  status(): ClusterStatus;
  /** Stops watching and writing, drains requests in flight within drainMs; true if they all finished. */
  stop(drainMs?: number): Promise<boolean>;
}

/** Report metrics, registered once per registry (sidecars sharing one registry share them). */
function clusterMetrics(registry: Registry) {
  const writes =
    (registry.getSingleMetric('originguard_report_writes_total') as Counter<'result'> | undefined) ??
    new Counter({
      name: 'originguard_report_writes_total',
      help: 'OriginReport writes (server-side applies and deletes), by result: success or error.',
      labelNames: ['result'] as const,
      registers: [registry],
    });
  const up =
    (registry.getSingleMetric('originguard_kube_api_up') as Gauge | undefined) ??
    new Gauge({
      name: 'originguard_kube_api_up',
      help: '1 while the API server answers the sidecar (any status), 0 while it cannot be reached.',
      registers: [registry],
    });
  writes.labels('success').inc(0);
  writes.labels('error').inc(0);
  return { writes, up };
}

function kubeReportApi(client: KubeClient, namespace: string): ReportApi {
  const path = (name: string) =>
    resourcePath({ group: GROUP, version: VERSION, plural: 'originreports', namespace, name });
  return {
    async apply(report: OriginReport) {
      await client.apply(path(report.metadata.name), report, SIDECAR_FIELD_MANAGER, true);
    },
    async delete(name: string) {
      await client.delete(path(name));
    },
  };
}

export async function startClusterSidecar(opts: ClusterSidecarOptions): Promise<ClusterSidecar> {
  const { identity, logger } = opts;
  const metrics = opts.metrics ?? new SidecarMetrics();
  const kubeMetrics = clusterMetrics(metrics.registry);
  const client = new KubeClient(opts.credentials, 10_000);
  let writer: ReportWriter | undefined;
  const sidecar = new Sidecar({
    logger,
    metrics,
    resolver: opts.resolver ?? new Resolver({}),
    limits: opts.limits ?? DEFAULT_LIMITS,
    maxBodyBytes: opts.maxBodyBytes ?? SIDECAR_DEFAULTS.maxRequestBody,
    requestBufferMemory: opts.requestBufferMemory,
    listenAddress: opts.listenAddress,
    onHealthChange: (key) => writer?.changed(key),
  });

  let apiUp = true;
  const apiResult = (ok: boolean, err?: unknown) => {
    // Any answer, even 403, means the API server is there; only "no answer" is down.
    const up = ok || !isUnreachable(err);
    kubeMetrics.up.set(up ? 1 : 0);
    if (up === apiUp) return;
    apiUp = up;
    if (up) {
      logger.info('API server reachable again; writing the latest reports');
      writer?.retryNow();
    } else logger.warn('API server unreachable; still serving, reports are written when it is back');
  };
  writer = new ReportWriter({
    api: kubeReportApi(client, identity.namespace),
    identity,
    snapshot: (key) => sidecar.healthOf(key),
    logger,
    ...(opts.reportDebounceMs === undefined ? {} : { debounceMs: opts.reportDebounceMs }),
    ...(opts.reportHeartbeatMs === undefined ? {} : { heartbeatMs: opts.reportHeartbeatMs }),
    onResult: (ok, err) => {
      kubeMetrics.writes.labels(ok ? 'success' : 'error').inc();
      apiResult(ok, err);
    },
  });
  kubeMetrics.up.set(1);

  const informer = new Informer<OriginObject>(client, {
    name: 'origins',
    paths: [
      resourcePath({ group: GROUP, version: VERSION, plural: 'origins', namespace: identity.namespace }),
    ],
    logger,
    ...(opts.watchStallTimeoutMs === undefined ? {} : { stallTimeoutMs: opts.watchStallTimeoutMs }),
    onApiResult: apiResult,
  });

  const reservedPorts: number[] = [];
  const loop = new SelectionLoop({
    sidecar,
    writer,
    informer,
    logger,
    metrics,
    labels: opts.labels,
    reservedPorts,
  });
  const status = (): ClusterStatus => ({
    pod: identity.podName,
    namespace: identity.namespace,
    labels: loop.labels,
    apiServerUp: apiUp,
    synced: informer.synced,
    reports: writer.state(),
  });
  const admin =
    opts.admin &&
    createAdminServer(
      {
        get ready() {
          return loop.ready;
        },
        health: () => sidecar.health(),
        configErrors: () => loop.errors,
        cluster: status,
      },
      metrics,
    );
  let adminPort: number | undefined;
  if (admin !== undefined && opts.admin !== undefined) {
    try {
      await admin.listen({ port: opts.admin.port, host: opts.admin.address });
    } catch (err) {
      await client.close();
      throw err;
    }
    adminPort = (admin.server.address() as { port: number }).port;
    // An Origin on the admin port is refused with a message rather than failing to bind.
    reservedPorts.push(adminPort);
  }

  informer.on('synced', () => loop.trigger());
  const changed = () => {
    if (informer.synced) loop.trigger();
  };
  informer.on('add', changed);
  informer.on('delete', changed);
  // The operator writes Origin.status about once a second while things change: a
  // status-only update (same generation) changes nothing this sidecar serves.
  informer.on('update', (now, old) => {
    if (now.metadata.generation !== old.metadata.generation) changed();
  });
  informer.start();
  const poll = setInterval(() => void loop.pollLabels(), opts.labelsPollMs ?? 10_000);
  poll.unref();

  return {
    sidecar,
    metrics,
    adminPort,
    get ready() {
      return loop.ready;
    },
    firstApplied: loop.firstApplied,
    errors: () => loop.errors,
    status,
    async stop(drainMs = 0) {
      clearInterval(poll);
      // No apply may run once draining starts (it could bind a port again).
      await loop.stop();
      // Stop accepting at once; a write or list still in flight must not delay that.
      const [clean] = await Promise.all([sidecar.drain(drainMs), informer.stop(), writer.stop()]);
      await admin?.close();
      await client.close();
      return clean;
    },
  };
}
