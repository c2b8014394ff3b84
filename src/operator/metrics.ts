// Prometheus metrics of the operator, in base units with _total counters.
// Label values are bounded: controller and informer names, results, reasons.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly #queueDepths = new Map<string, () => number>();
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
  readonly certificateExpiry = new Gauge({
    name: 'originguard_operator_webhook_certificate_expiry_timestamp_seconds',
    help: 'When the webhook serving certificate in use expires (Unix time).',
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

  /** Reports `depth()` as the queue depth of `controller` at each scrape. */
  watchQueueDepth(controller: string, depth: () => number): void {
    this.#queueDepths.set(controller, depth);
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'originguard_operator_' });
  }
}
