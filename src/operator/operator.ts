// The operator process: informers on Origins, OriginReports, Pods and the
// sidecar RoleBindings feed two coalescing work queues (Origin status, namespace
// RBAC) that run only on the replica holding the leader Lease; every replica
// serves the injection webhook with the certificate kept in a shared Secret.
// Pods are watched only in namespaces with Origins, slimmed (pod-cache.ts).
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { GROUP, VERSION } from '../api/origin.ts';
import { ORIGIN_LABEL } from '../api/report.ts';
import { selects } from '../api/selector.ts';
import { type KubeClient, resourcePath } from '../kube/client.ts';
import { Informer, namespaceOfPath } from '../kube/informer.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import { objectKey } from '../kube/objects.ts';
import { WorkQueue } from '../kube/work-queue.ts';
import { type Admission, type AdmissionOptions, startAdmission } from './admission.ts';
import { EventRecorder } from './events.ts';
import type { OperatorMetrics } from './metrics.ts';
import { MANAGED_BY, MANAGED_BY_LABEL, SIDECAR_ROLE_BINDING } from './names.ts';
import { PodCache } from './pod-cache.ts';
import { ProbeController } from './probe-controller.ts';
import { networkList, type ProbePolicy } from './probe-policy.ts';
import { RbacController } from './rbac-controller.ts';
import type { Origin, Pod, Report, RoleBinding } from './resources.ts';
import { StatusController } from './status-controller.ts';

export interface OperatorOptions {
  /** The operator's own namespace: its Lease and webhook Secret live there; never injected. */
  namespace: string;
  /** Namespaces to watch; empty: all. */
  watchNamespaces: readonly string[];
  /** This replica's name (pod name), for the Lease holder and Events. */
  identity: string;
  leaderElection:
    | { enabled: false }
    | {
        enabled: true;
        leaseName: string;
        namespace: string;
        leaseDurationMs: number;
        renewDeadlineMs: number;
        retryPeriodMs: number;
      };
  /** Least time between two status writes of one Origin. */
  statusIntervalMs: number;
  /** Full relist of every informer, repairing any missed watch event. */
  resyncIntervalMs: number;
  /** Undefined: no webhook (e.g. only the reconcilers for a test). */
  admission:
    | Omit<AdmissionOptions, 'client' | 'logger' | 'metrics' | 'origins' | 'operatorNamespace'>
    | undefined;
  health: { host: string; port: number } | undefined;
  metricsBind: { host: string; port: number } | undefined;
  /** The checklist run from the operator's own pod (probe-policy.ts). */
  probe: ProbePolicy;
}

export class Operator {
  private readonly client: KubeClient;
  private readonly opts: OperatorOptions;
  private readonly logger: Logger;
  private readonly metrics: OperatorMetrics;
  readonly origins: Informer<Origin>;
  readonly reports: Informer<Report>;
  readonly pods: PodCache;
  readonly bindings: Informer<RoleBinding>;
  private readonly statusController: StatusController;
  private readonly rbacController: RbacController;
  private readonly probes: ProbeController;
  private statusQueue: WorkQueue | undefined;
  private rbacQueue: WorkQueue | undefined;
  private probeQueue: WorkQueue | undefined;
  private elector: LeaderElector | undefined;
  private admission: Admission | undefined;
  private readonly servers: FastifyInstance[] = [];
  private leading = false;

  constructor(client: KubeClient, opts: OperatorOptions, logger: Logger, metrics: OperatorMetrics) {
    this.client = client;
    this.opts = opts;
    this.logger = logger;
    this.metrics = metrics;
    const common = (name: string) => ({
      relistIntervalMs: opts.resyncIntervalMs,
      logger,
      onRestart: (reason: string) => metrics.watchRestarts.labels(name, reason).inc(),
    });
    const informer = <T extends Origin | Report | RoleBinding>(
      name: string,
      group: string,
      version: string,
      plural: string,
      extra: { labelSelector?: string; fieldSelector?: string } = {},
    ) =>
      new Informer<T>(client, { name, paths: this.paths(group, version, plural), ...common(name), ...extra });
    this.origins = informer<Origin>('origins', GROUP, VERSION, 'origins');
    this.reports = informer<Report>('originreports', GROUP, VERSION, 'originreports', {
      labelSelector: ORIGIN_LABEL,
    });
    this.pods = new PodCache(client, common('pods'));
    this.bindings = informer<RoleBinding>('rolebindings', 'rbac.authorization.k8s.io', 'v1', 'rolebindings', {
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
      fieldSelector: `metadata.name=${SIDECAR_ROLE_BINDING}`,
    });
    const events = new EventRecorder(client, opts.identity, logger);
    this.probes = new ProbeController({
      client,
      origins: this.origins,
      policy: opts.probe,
      denied: networkList(opts.probe.deniedNetworks, 'origin-probe-denied-networks'),
      identity: opts.identity,
      logger,
      metrics,
      onResult: (key) => this.statusQueue?.add(key),
    });
    this.statusController = new StatusController({
      client,
      origins: this.origins,
      reports: this.reports,
      pods: this.pods,
      events,
      metrics,
      logger,
      vantage: (origin, pods, reports) => this.probes.vantage(origin, pods, reports),
      onComputed: (key, status) => {
        if (this.probes.wants(key, status)) this.probeQueue?.add(key);
      },
    });
    // Read at each scrape: exact for each queue, 0 on a replica that does not lead.
    metrics.watchQueueDepth('status', () => this.statusQueue?.depth ?? 0);
    metrics.watchQueueDepth('rbac', () => this.rbacQueue?.depth ?? 0);
    metrics.watchCache({
      origins: () => this.origins.size,
      originreports: () => this.reports.size,
      pods: () => this.pods.informer.size,
      rolebindings: () => this.bindings.size,
    });
    metrics.watchPodNamespaces(() => this.pods.namespaces.length);
    metrics.watchQueueDepth('probe', () => this.probeQueue?.depth ?? 0);
    this.rbacController = new RbacController({
      client,
      origins: this.origins,
      pods: this.pods,
      bindings: this.bindings,
      logger,
    });
    this.route();
  }

  private paths(group: string, version: string, plural: string): string[] {
    if (this.opts.watchNamespaces.length === 0) return [resourcePath({ group, version, plural })];
    return this.opts.watchNamespaces.map((namespace) => resourcePath({ group, version, plural, namespace }));
  }

  /**
   * Ready to answer admission reviews: the webhook decides from Origins alone, so a
   * replica is ready once they are listed and its certificate is loaded. The other
   * caches gate the reconcilers instead (start() joins the election once they synced),
   * so a namespace gaining its first Origin never takes a webhook endpoint away.
   */
  get ready(): boolean {
    return this.origins.synced && (this.admission === undefined || this.admission.ready);
  }

  private get informers() {
    return [this.origins, this.reports, this.pods.informer, this.bindings];
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Queues an Origin's status, once its namespace's pods are listed: until then every
   * pod would look gone (the namespace's sync queues its Origins). A deleted Origin is
   * queued anyway, so the controller forgets it.
   */
  private enqueueStatus(key: string, namespace: string, deleted = false): void {
    if (deleted || this.pods.synced(namespace)) this.statusQueue?.add(key);
  }

  /** Queues a namespace's RoleBinding: at once without Origins (to remove it), else once its pods are listed. */
  private enqueueRbac(namespace: string): void {
    if (this.pods.synced(namespace) || this.origins.list(namespace).length === 0)
      this.rbacQueue?.add(namespace);
  }

  /** Maps informer events to work: an Origin's status key and its namespace's RBAC key. */
  private route(): void {
    const originChanged = (o: Origin, deleted = false) => {
      const ns = o.metadata.namespace ?? '';
      // A namespace's pods are watched from its first Origin on, until its last goes.
      if (deleted || !this.pods.synced(ns)) this.pods.follow(this.origins.namespaces());
      this.enqueueStatus(objectKey(o), ns, deleted);
      this.enqueueRbac(ns);
      if (this.probes.requested(o) !== undefined) this.probeQueue?.add(objectKey(o));
    };
    this.origins.on('add', (o) => originChanged(o));
    // Our own status writes come back as updates too; the rerun finds nothing to write.
    this.origins.on('update', (o) => originChanged(o));
    this.origins.on('delete', (o) => originChanged(o, true));
    this.pods.informer.on('pathSynced', (path) => {
      const ns = namespaceOfPath(path) ?? '';
      for (const o of this.origins.list(ns)) this.enqueueStatus(objectKey(o), ns);
      this.enqueueRbac(ns);
    });
    const reportChanged = (r: Report) => {
      const origin = r.status?.originName;
      const ns = r.metadata.namespace;
      if (origin !== undefined && ns !== undefined) this.enqueueStatus(`${ns}/${origin}`, ns);
    };
    for (const e of ['add', 'update', 'delete'] as const) this.reports.on(e, reportChanged);
    const podChanged = (pod: Pod, old?: Pod) => {
      const ns = pod.metadata.namespace;
      if (ns === undefined) return;
      for (const o of this.origins.list(ns)) {
        if (
          selects(o.spec.selector, pod.metadata.labels) ||
          (old !== undefined && selects(o.spec.selector, old.metadata.labels))
        ) {
          this.enqueueStatus(objectKey(o), ns);
          this.enqueueRbac(ns);
        }
      }
    };
    this.pods.informer.on('add', (p) => podChanged(p));
    this.pods.informer.on('update', (p, old) => podChanged(p, old));
    this.pods.informer.on('delete', (p) => podChanged(p));
    this.bindings.on('delete', (b) => this.enqueueRbac(b.metadata.namespace ?? ''));
    this.bindings.on('update', (b) => this.enqueueRbac(b.metadata.namespace ?? ''));
  }

  async start(): Promise<void> {
    for (const i of this.informers) i.start();
    if (this.opts.admission !== undefined) {
      this.admission = await startAdmission({
        ...this.opts.admission,
        client: this.client,
        logger: this.logger,
        metrics: this.metrics,
        origins: this.origins,
        operatorNamespace: this.opts.namespace,
      });
    }
    await this.startServers();
    // Origins first: they say which namespaces' pods to list.
    await this.origins.waitForSync();
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    this.logger.info(
      { pods: this.pods.informer.size, podNamespaces: this.pods.namespaces.length },
      'caches synced',
    );
    const le = this.opts.leaderElection;
    if (!le.enabled) {
      this.startLeading();
      return;
    }
    this.elector = new LeaderElector(this.client, {
      namespace: le.namespace,
      name: le.leaseName,
      identity: this.opts.identity,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      logger: this.logger,
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => void this.stopLeading(),
    });
    this.elector.start();
  }

  private startLeading(): void {
    if (this.leading) return;
    this.leading = true;
    this.metrics.leader.set(1);
    const queue = (name: string, minIntervalMs: number, process: (key: string) => Promise<unknown>) =>
      new WorkQueue({
        name,
        minIntervalMs,
        process,
        logger: this.logger,
        onProcessed: (result, ms) => {
          this.metrics.reconciles.labels(name, result).inc();
          this.metrics.reconcileDuration.labels(name).observe(ms / 1000);
        },
      });
    this.statusQueue = queue('status', this.opts.statusIntervalMs, async (k) => {
      const again = await this.statusController.reconcile(k);
      if (again !== undefined) this.statusQueue?.add(k, again);
    });
    this.rbacQueue = queue('rbac', 1000, (ns) => this.rbacController.reconcile(ns));
    // Its interval is the per-Origin rate limit of the probe.
    this.probeQueue = queue('probe', this.opts.probe.minIntervalMs, (k) => this.probes.run(k));
    this.statusQueue.start();
    this.rbacQueue.start();
    this.probeQueue.start();
    // Everything once: state may have changed while another replica led, or none did.
    for (const o of this.origins.list()) {
      this.enqueueStatus(objectKey(o), o.metadata.namespace ?? '');
      this.enqueueRbac(o.metadata.namespace ?? '');
      if (this.probes.requested(o) !== undefined) this.probeQueue.add(objectKey(o));
    }
    for (const b of this.bindings.list()) this.enqueueRbac(b.metadata.namespace ?? '');
  }

  private async stopLeading(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.metrics.leader.set(0);
    const queues = [this.statusQueue, this.rbacQueue, this.probeQueue];
    this.statusQueue = undefined;
    this.rbacQueue = undefined;
    this.probeQueue = undefined;
    await Promise.all(queues.map((q) => q?.stop()));
    this.statusController.reset();
    this.probes.reset();
  }

  private async startServers(): Promise<void> {
    const { health, metricsBind } = this.opts;
    if (health !== undefined) {
      const app = Fastify({ logger: false, forceCloseConnections: true });
      app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok\n'));
      app.get('/readyz', async (_req, reply) =>
        this.ready
          ? reply.type('text/plain').send('ready\n')
          : reply
              .code(503)
              .type('text/plain')
              .send('not ready: caches syncing or webhook certificate not loaded\n'),
      );
      await app.listen(health);
      this.servers.push(app);
    }
    if (metricsBind !== undefined) {
      const app = Fastify({ logger: false, forceCloseConnections: true });
      app.get('/metrics', async (_req, reply) => {
        return reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
      });
      await app.listen(metricsBind);
      this.servers.push(app);
    }
  }

  /** Graceful stop: finish the reconciles in progress, release the Lease, close the webhook and probes. */
  async stop(): Promise<void> {
    await this.stopLeading();
    await this.elector?.stop();
    await this.admission?.close();
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(this.servers.map((s) => s.close()));
  }
}
