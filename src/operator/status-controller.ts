// The only writer of Origin.status: aggregates the OriginReports of an Origin's
// pods into its status (aggregate.ts decides; this file does the I/O), writes it
// with server-side apply when it really changed, and records Events on
// transitions. The work queue runs each Origin at most about once a second, so a
// burst of report changes becomes one status write.
import type { Logger } from 'pino';
import { API_VERSION, GROUP, VERSION } from '../api/origin.ts';
import type { OriginStatus } from '../api/status.ts';
import { type KubeClient, resourcePath } from '../kube/client.ts';
import type { Informer } from '../kube/informer.ts';
import { aggregateStatus, SPEC_APPLY_GRACE_MS, type Vantage } from './aggregate.ts';
import type { EventRecorder } from './events.ts';
import type { OperatorMetrics } from './metrics.ts';
import { OPERATOR_FIELD_MANAGER } from './names.ts';
import type { PodCache } from './pod-cache.ts';
import type { Origin, Pod, Report } from './resources.ts';
import { statusChanged } from './status-diff.ts';
import { transitionEvents } from './status-events.ts';

export interface StatusControllerDeps {
  client: KubeClient;
  origins: Informer<Origin>;
  reports: Informer<Report>;
  pods: Pick<PodCache, 'list' | 'synced'>;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  /** The other vantage points (probe-controller.ts); without: the pods are compared among themselves. */
  vantage?: (origin: Origin, pods: readonly Pod[], reports: readonly Report[]) => Promise<Vantage>;
  /** Each status computed, written or not (the probe controller decides whether to probe). */
  onComputed?: (key: string, status: OriginStatus) => void;
}

export class StatusController {
  private readonly deps: StatusControllerDeps;
  /**
   * The status this replica last wrote per Origin: newer than the informer's copy
   * until the watch delivers our write, so a quick second run neither writes the
   * same status again nor records the same transition twice.
   */
  private readonly written = new Map<string, { status: OriginStatus; generation: number }>();

  constructor(deps: StatusControllerDeps) {
    this.deps = deps;
  }

  /** Forgets what this replica wrote (on losing leadership another replica may write). */
  reset(): void {
    this.written.clear();
    this.deps.metrics.clearOrigins();
  }

  /**
   * Reconciles one Origin. Returns when to look again without any event: while
   * sidecars still run an old spec, Degraded must turn True once the grace period
   * passes even if no report changes.
   */
  async reconcile(key: string): Promise<number | undefined> {
    const { origins, reports, pods, client, metrics, logger } = this.deps;
    const origin = origins.get(key);
    if (origin === undefined) {
      this.written.delete(key);
      metrics.deleteOrigin(key);
      return undefined;
    }
    const { name, namespace = '' } = origin.metadata;
    // Until its namespace's pods are listed, every pod would look gone: wait (the sync requeues it).
    if (!pods.synced(namespace)) return undefined;
    const previous = this.previousStatus(key, origin);
    const podList = pods.list(namespace);
    const reportList = reports.list(namespace).filter((r) => r.status?.originName === name);
    const vantage = await this.deps.vantage?.(origin, podList, reportList);
    const next = aggregateStatus({
      origin: origin as Parameters<typeof aggregateStatus>[0]['origin'],
      pods: podList,
      reports: reportList,
      previous,
      now: new Date(),
      ...(vantage === undefined ? {} : { vantage }),
    });
    this.deps.onComputed?.(key, next);
    const again = recheckAfter(next);
    metrics.setOriginStatus(key, next);
    if (previous !== undefined && !statusChanged(previous, next)) return again;
    const path = resourcePath({
      group: GROUP,
      version: VERSION,
      plural: 'origins',
      namespace,
      name,
      subresource: 'status',
    });
    try {
      await client.apply(
        path,
        { apiVersion: API_VERSION, kind: 'Origin', metadata: { name, namespace }, status: next },
        OPERATOR_FIELD_MANAGER,
      );
      metrics.statusWrites.labels('success').inc();
    } catch (err) {
      metrics.statusWrites.labels('error').inc();
      throw err;
    }
    this.written.set(key, { status: next, generation: origin.metadata.generation ?? 0 });
    logger.debug(
      { origin: key, reachable: next.reachable, cause: next.cause, pods: next.podsSummary },
      'status written',
    );
    for (const event of transitionEvents(previous, next, name)) {
      metrics.events.labels(event.reason).inc();
      await this.deps.events.record(origin, event);
    }
    return again;
  }

  private previousStatus(key: string, origin: Origin): OriginStatus | undefined {
    const mine = this.written.get(key);
    const seen = origin.status;
    if (mine === undefined) return seen;
    // Our write is in the cache once the cached status equals it; from then on the cache is the truth.
    if (seen !== undefined && !statusChanged(seen, mine.status)) {
      this.written.delete(key);
      return seen;
    }
    return mine.status;
  }
}

/** While Ready is False for SpecNotApplied: when its grace period ends (Degraded turns True then). */
function recheckAfter(status: OriginStatus): number | undefined {
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'False' || ready.reason !== 'SpecNotApplied') return undefined;
  const since = Date.parse(ready.lastTransitionTime);
  return Math.max(0, since + SPEC_APPLY_GRACE_MS - Date.now()) + 1000;
}
