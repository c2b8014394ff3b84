// The operator's own vantage point: when an Origin's pods fail (or when asked
// through the diagnose-request annotation), the leader runs the checklist from
// its own pod with the diagnose library, against the Origin's declared upstream
// and backups only, and keeps the result; the status controller puts it in the
// Origin's status (operatorProbe) and compares it with the pods' view
// (triangulate.ts). What the probe may do is probe-policy.ts; the work queue
// that runs it holds each Origin to one probe per --origin-probe-min-interval.
import type net from 'node:net';
import type { Logger } from 'pino';
import { DIAGNOSE_REQUEST_ANNOTATION } from '../api/contract.ts';
import { parseDuration } from '../api/duration.ts';
import { statusRanges } from '../api/health-check.ts';
import type { OriginStatus } from '../api/status.ts';
import type { OperatorProbe } from '../api/triangulation.ts';
import { validateOriginObject } from '../api/validate.ts';
import { checkOutcome } from '../diagnose/check.ts';
import { diagnose } from '../diagnose/diagnosis.ts';
import { planForOrigin } from '../diagnose/plan.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Informer } from '../kube/informer.ts';
import { objectKey } from '../kube/objects.ts';
import { PRODUCT_VERSION } from '../version.ts';
import type { Vantage } from './aggregate.ts';
import { MetadataCache } from './metadata-cache.ts';
import type { OperatorMetrics } from './metrics.ts';
import { namespaceAllowed, type ProbePolicy, probeRecord, probeWanted, refusal } from './probe-policy.ts';
import type { Origin, Pod, Report } from './resources.ts';

/** The node label zones are read from. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** However long an Origin's own timeouts, a probe step waits at most this long. */
const MAX_STEP_MS = 10_000;
/** Nodes whose zone one status computation may look up. */
const MAX_NODES_LOOKED_UP = 64;

export interface ProbeControllerDeps {
  readonly client: KubeClient;
  readonly origins: Informer<Origin>;
  readonly policy: ProbePolicy;
  readonly denied: net.BlockList;
  /** This replica (its pod name): where the probe ran from. */
  readonly identity: string;
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  /** A probe's result is in: the Origin's status should be computed again. */
  readonly onResult: (key: string) => void;
}

export class ProbeController {
  readonly #deps: ProbeControllerDeps;
  readonly #results = new Map<string, OperatorProbe>();
  /** What the pods' failure looked like when it last asked for a probe. */
  readonly #asked = new Map<string, { at: number; shape: string }>();
  readonly #namespaces: MetadataCache;
  readonly #nodes: MetadataCache;

  constructor(deps: ProbeControllerDeps) {
    this.#deps = deps;
    const cache = (path: (name: string) => string) =>
      new MetadataCache(deps.client, { path, logger: deps.logger, ttlMs: 60_000 });
    this.#namespaces = cache((n) => `/api/v1/namespaces/${encodeURIComponent(n)}`);
    this.#nodes = cache((n) => `/api/v1/nodes/${encodeURIComponent(n)}`);
  }

  /** Forgets this replica's results (another replica may lead; the status keeps the last one). */
  reset(): void {
    this.#results.clear();
    this.#asked.clear();
  }

  /** The request id of the Origin's diagnose-request annotation, if not answered yet. */
  requested(origin: Origin): string | undefined {
    const id = origin.metadata.annotations?.[DIAGNOSE_REQUEST_ANNOTATION];
    if (id === undefined || id === '') return undefined;
    const answered =
      this.#results.get(objectKey(origin))?.requestId ?? origin.status?.operatorProbe?.requestId;
    return id === answered ? undefined : id;
  }

  /** After a status was computed: whether the pods' failure calls for a (new) probe. */
  wants(key: string, status: OriginStatus): boolean {
    const failing = status.pods?.failing ?? 0;
    if (!this.#deps.policy.enabled || failing === 0) {
      this.#asked.delete(key);
      return false;
    }
    const shape = `${failing}/${status.pods?.selected ?? 0}/${status.cause ?? ''}`;
    const now = Date.now();
    if (!probeWanted(this.#asked.get(key), shape, now, this.#deps.policy.refreshMs)) return false;
    this.#asked.set(key, { at: now, shape });
    return true;
  }

  /** The other vantage points of an Origin, for its status: the probe, zones of failing pods' nodes, the policy. */
  async vantage(origin: Origin, pods: readonly Pod[], reports: readonly Report[]): Promise<Vantage> {
    const { policy } = this.#deps;
    const namespace = origin.metadata.namespace ?? 'default';
    const labels =
      policy.namespaceSelector === undefined ? undefined : await this.#namespaces.labels(namespace);
    if (reports.some((r) => r.status?.health === 'Unreachable')) await this.#lookUpZones(pods, reports);
    const probe = this.#results.get(objectKey(origin));
    return {
      ...(probe === undefined ? {} : { probe }),
      zoneOf: (node) => this.#nodes.cached(node)?.[ZONE_LABEL],
      allowance: namespaceAllowed(policy, namespace, labels),
      probeMaxAgeMs: 2 * policy.refreshMs,
    };
  }

  async #lookUpZones(pods: readonly Pod[], reports: readonly Report[]): Promise<void> {
    const reporting = new Set(reports.map((r) => r.status?.podUID));
    const nodes = new Set<string>();
    for (const p of pods) {
      if (p.metadata.uid !== undefined && reporting.has(p.metadata.uid) && p.spec?.nodeName)
        nodes.add(p.spec.nodeName);
    }
    for (const r of reports) if (r.status?.nodeName) nodes.add(r.status.nodeName);
    await Promise.all([...nodes].slice(0, MAX_NODES_LOOKED_UP).map((n) => this.#nodes.labels(n)));
  }

  /** Runs the probe of one Origin (the work queue's process). */
  async run(key: string): Promise<void> {
    const { origins, policy, logger, metrics } = this.#deps;
    const origin = origins.get(key);
    if (origin === undefined) {
      this.#results.delete(key);
      this.#asked.delete(key);
      return;
    }
    const requestId = this.requested(origin);
    const reason = requestId === undefined ? 'PodsFailing' : 'Requested';
    const namespace = origin.metadata.namespace ?? 'default';
    const labels =
      policy.namespaceSelector === undefined ? undefined : await this.#namespaces.labels(namespace);
    const allowed = namespaceAllowed(policy, namespace, labels);
    // Not allowed: a request gets its answer; pods failing get none (the triangulation says why).
    if (!allowed.allowed && requestId === undefined) return;
    const run = { from: this.#deps.identity, reason, requestId } as const;
    const started = performance.now();
    const record = allowed.allowed
      ? await this.#probe(origin, run)
      : probeRecord({ ...run, time: new Date() }, { probed: false, why: allowed.why });
    metrics.originProbes.labels(reason, record.result).inc();
    metrics.originProbeDuration.observe((performance.now() - started) / 1000);
    this.#results.set(key, record);
    logger.info(
      { origin: key, reason, requestId, result: record.result, cause: record.cause, summary: record.summary },
      'origin probed from the operator',
    );
    this.#deps.onResult(key);
  }

  async #probe(
    origin: Origin,
    run: { from: string; reason: OperatorProbe['reason']; requestId: string | undefined },
  ): Promise<OperatorProbe> {
    const valid = validateOriginObject(origin);
    if (!valid.ok)
      return probeRecord(
        { ...run, time: new Date() },
        { probed: false, why: `invalid spec: ${valid.errors[0]}` },
      );
    const spec = valid.value.spec;
    const up = spec.upstream;
    // A caFile is a path inside the sidecar: the chain is shown but cannot be verified from here.
    const unverifiable = [up.tls, ...(up.backups ?? []).map((b) => b.tls)].some(
      (t) => t?.caFile !== undefined,
    );
    const path = spec.healthCheck?.path;
    const plan = planForOrigin(
      `origin/${origin.metadata.name}`,
      valid.value,
      {
        connectTimeoutMs: Math.min(parseDuration(spec.timeouts.connect), MAX_STEP_MS),
        responseTimeoutMs: Math.min(parseDuration(spec.timeouts.response), MAX_STEP_MS),
        ...(unverifiable ? { insecure: true } : {}),
        ...(path === undefined ? {} : { path }),
      },
      () => undefined,
    );
    const refused: string[] = [];
    const d = await diagnose(plan, {
      vantage: { inCluster: true, fromCluster: true, sidecars: null, notes: [] },
      events: { onRefused: (_t, address, why) => refused.push(`not probed: ${address} (${why})`) },
      checklist: {
        http: path !== undefined,
        userAgent: `originguard-operator-probe/${PRODUCT_VERSION}`,
        admit: (a) => refusal(a.address, this.#deps.denied),
      },
    });
    const time = new Date();
    if (refused.length > 0 && !d.steps.some((s) => s.phase === 'tcp')) {
      const why = `every address of the origin is in a network the operator does not probe: ${refused.map((r) => r.replace(/^not probed: /, '')).join('; ')}`;
      return probeRecord({ ...run, time }, { probed: false, why });
    }
    const outcome = checkOutcome(
      plan,
      d,
      path === undefined ? undefined : statusRanges(spec.healthCheck?.expectedStatuses),
    );
    return probeRecord(
      { ...run, time },
      {
        probed: true,
        ok: outcome.ok,
        cause: outcome.failure?.cause,
        statusCode: outcome.statusCode,
        summary: outcome.summary,
        steps: outcome.steps,
        limits: [
          ...refused,
          ...(unverifiable ? ['certificates not verified: the CA file is inside the sidecar'] : []),
        ],
      },
    );
  }
}
