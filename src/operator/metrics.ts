// Prometheus metrics of the operator, in base units with _total counters.
// Label values are bounded: controller and informer names, results, reasons;
// the per-Origin gauges have one `origin` (namespace/name) per Origin and at
// most one cause series each, and go when the Origin goes.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { OriginStatus } from '../api/status.ts';

/** The states `originguard_operator_origin_pods` counts, from status.pods and status.notInjected. */
export const ORIGIN_POD_STATES = [
  'selected',
  'injected',
  'current',
  'reachable',
  'failing',
  'not_injected',
] as const;

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly #queueDepths = new Map<string, () => number>();
  #cacheSizes: Record<string, () => number> = {};
  #podNamespaces: () => number = () => 0;
  readonly reconciles = new Counter({
    name: 'originguard_operator_reconciles_total',
    help: 'Reconciles run, by controller and result (success, error).',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'originguard_operator_reconcile_duration_seconds',
    help: 'Time one reconcile took, by controller.',
    labelNames: ['controller'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'originguard_operator_queue_depth',
    help: 'Keys waiting or being processed, by controller.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [controller, depth] of this.#queueDepths) this.queueDepth.labels(controller).set(depth());
    },
  });
  readonly statusWrites = new Counter({
    name: 'originguard_operator_status_writes_total',
    help: 'Origin status writes (at most about one per second per Origin), by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'originguard_operator_events_total',
    help: 'Kubernetes Events recorded on Origins, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly webhookReviews = new Counter({
    name: 'originguard_operator_webhook_reviews_total',
    help: 'Pod admission reviews answered, by decision (injected, or why not: opted-out, no-origin-selects, ...).',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });
  readonly webhookReviewDuration = new Histogram({
    name: 'originguard_operator_webhook_review_duration_seconds',
    help: 'Time the webhook took to answer one pod admission review, from its request to its response (read, decide, answer).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: 'originguard_operator_webhook_certificate_expiry_timestamp_seconds',
    help: 'When the webhook serving certificate in use expires (Unix time).',
    registers: [this.registry],
  });
  readonly originProbes = new Counter({
    name: 'originguard_operator_probes_total',
    help: "Checklists run from the operator's pod, by reason (PodsFailing, Requested) and result (Reachable, Unreachable, NotProbed).",
    labelNames: ['reason', 'result'] as const,
    registers: [this.registry],
  });
  readonly originProbeDuration = new Histogram({
    name: 'originguard_operator_probe_duration_seconds',
    help: "Time one probe from the operator's pod took.",
    buckets: [0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'originguard_operator_leader',
    help: '1 while this replica holds the leader lease and runs the reconcilers, else 0.',
    registers: [this.registry],
  });
  readonly watchRestarts = new Counter({
    name: 'originguard_operator_watch_restarts_total',
    help: 'Watch restarts, by resource and reason (closed, error, stall, expired, relist).',
    labelNames: ['resource', 'reason'] as const,
    registers: [this.registry],
  });

  readonly cachedObjects = new Gauge({
    name: 'originguard_operator_cached_objects',
    help: 'Objects held in the informer caches, by resource (pods: only in namespaces with Origins).',
    labelNames: ['resource'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [resource, size] of Object.entries(this.#cacheSizes)) {
        this.cachedObjects.labels(resource).set(size());
      }
    },
  });
  readonly podWatchNamespaces = new Gauge({
    name: 'originguard_operator_pod_watch_namespaces',
    help: 'Namespaces whose pods the operator watches: those with at least one Origin.',
    registers: [this.registry],
    collect: () => {
      this.podWatchNamespaces.set(this.#podNamespaces());
    },
  });

  /** Reports each `size()` as the cached objects of its resource at each scrape. */
  watchCache(sizes: Record<string, () => number>): void {
    this.#cacheSizes = sizes;
  }

  /** Reports `count()` as the namespaces whose pods are watched at each scrape. */
  watchPodNamespaces(count: () => number): void {
    this.#podNamespaces = count;
  }

  // Per Origin, from the status the leader writes (the kube-state-metrics way), so
  // alerts and dashboards need no sidecar scrape to know an Origin's state.
  readonly originReachable = new Gauge({
    name: 'originguard_operator_origin_reachable',
    help: 'Per Origin (namespace/name): 1 while its sidecars reach the origin, 0 while they do not (status.reachable); no series while it is Unknown.',
    labelNames: ['origin'] as const,
    registers: [this.registry],
  });
  readonly originPods = new Gauge({
    name: 'originguard_operator_origin_pods',
    help: `Pods of an Origin by state: ${ORIGIN_POD_STATES.join(', ')} (status.pods, status.notInjected).`,
    labelNames: ['origin', 'state'] as const,
    registers: [this.registry],
  });
  readonly originCause = new Gauge({
    name: 'originguard_operator_origin_cause',
    help: 'Per Origin, 1 for the cause most of its failing pods report (status.cause); no series while none fails.',
    labelNames: ['origin', 'cause'] as const,
    registers: [this.registry],
  });
  readonly originScope = new Gauge({
    name: 'originguard_operator_origin_scope',
    help: 'Per Origin, 1 for where its failure is (status.triangulation.scope: Origin, PodPath, Nodes, Zones, SomePods, AllPods); no series while nothing fails.',
    labelNames: ['origin', 'scope'] as const,
    registers: [this.registry],
  });
  /** The cause series each Origin has, to remove it when the cause changes or the Origin goes. */
  readonly #causeOf = new Map<string, string>();
  readonly #scopeOf = new Map<string, string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'originguard_operator_' });
  }

  /** Reports `depth()` as the queue depth of `controller` at each scrape. */
  watchQueueDepth(controller: string, depth: () => number): void {
    this.#queueDepths.set(controller, depth);
  }

  /** Publishes the status just computed for `origin` (namespace/name). */
  setOriginStatus(origin: string, status: OriginStatus): void {
    if (status.reachable === 'True' || status.reachable === 'False')
      this.originReachable.labels(origin).set(status.reachable === 'True' ? 1 : 0);
    else this.originReachable.remove(origin);
    const pods = status.pods;
    const counts: Record<(typeof ORIGIN_POD_STATES)[number], number> = {
      selected: pods?.selected ?? 0,
      injected: pods?.injected ?? 0,
      current: pods?.current ?? 0,
      reachable: pods?.reachable ?? 0,
      failing: pods?.failing ?? 0,
      not_injected: status.notInjected?.count ?? 0,
    };
    for (const state of ORIGIN_POD_STATES) this.originPods.labels(origin, state).set(counts[state]);
    oneSeries(this.originCause, this.#causeOf, origin, status.cause);
    const scope = status.triangulation?.scope;
    oneSeries(this.originScope, this.#scopeOf, origin, scope === 'None' ? undefined : scope);
  }

  /** Removes an Origin's series: it was deleted. */
  deleteOrigin(origin: string): void {
    this.originReachable.remove(origin);
    for (const state of ORIGIN_POD_STATES) this.originPods.remove(origin, state);
    const cause = this.#causeOf.get(origin);
    if (cause !== undefined) this.originCause.remove(origin, cause);
    this.#causeOf.delete(origin);
    const scope = this.#scopeOf.get(origin);
    if (scope !== undefined) this.originScope.remove(origin, scope);
    this.#scopeOf.delete(origin);
  }

  /** Removes every Origin's series: this replica stopped leading, and the new leader publishes them. */
  clearOrigins(): void {
    this.originReachable.reset();
    this.originPods.reset();
    this.originCause.reset();
    this.#causeOf.clear();
    this.originScope.reset();
    this.#scopeOf.clear();
  }
}

/** Keeps at most one series per Origin of a gauge labelled by a value (its cause, its scope): 1 for `value`, none when undefined. */
function oneSeries(
  gauge: Gauge<'origin' | 'cause'> | Gauge<'origin' | 'scope'>,
  current: Map<string, string>,
  origin: string,
  value: string | undefined,
): void {
  const before = current.get(origin);
  if (before !== undefined && before !== value) gauge.remove(origin, before);
  if (value === undefined) current.delete(origin);
  else {
    gauge.labels(origin, value).set(1);
    current.set(origin, value);
  }
}
