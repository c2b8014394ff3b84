// The sidecar's active checks of one origin (spec.healthCheck), run with the
// diagnose library's checklist: the sidecar's own resolver (cache included),
// its connector's attempt per address, TLS as configured and, with a path, one
// GET with the Host header traffic carries. A result feeds the same health as
// traffic (marked Probe), the address book and the metrics; thresholds decide
// transitions (checkTransition, pure). While the origin is ejected the checks
// decide recovery: one runs as each ejection interval ends, and no user request
// is spent as the trial. Checks are jittered, and a connect-only check is
// skipped while traffic proves the origin reachable.
import type { Logger } from 'pino';
import { type CheckSettings, checkSettings } from '../api/health-check.ts';
import type { OriginManifest } from '../api/origin.ts';
import { type CheckOutcome, checkOutcome } from '../diagnose/check.ts';
import { diagnose } from '../diagnose/diagnosis.ts';
import { type Plan, planForOrigin } from '../diagnose/plan.ts';
import type { AddressBook } from '../upstream/address-book.ts';
import { isConnectPhase } from '../upstream/classify.ts';
import type { Resolver } from '../upstream/resolver.ts';
import { PRODUCT_VERSION } from '../version.ts';
import type { HealthState, OriginHealth } from './health.ts';
import type { CheckMetrics } from './metrics.ts';
import type { OutlierDetector } from './outlier.ts';

/** Checks are spread over ±this share of the interval, so pods started together do not check together. */
export const JITTER = 0.1;
/** Least time between two checks, even while ejected with a short base ejection time. */
const MIN_GAP_MS = 50;

/**
 * What a check's result does to the health state, given the run of results it
 * ends (`consecutive` counts it). From Unknown the first check decides; otherwise
 * the thresholds do. An Unreachable origin stays so while checks fail (a new
 * cause is still shown).
 */
export function checkTransition(
  state: HealthState,
  ok: boolean,
  consecutive: number,
  settings: Pick<CheckSettings, 'healthyThreshold' | 'unhealthyThreshold'>,
): 'Reachable' | 'Unreachable' | undefined {
  if (ok) {
    if (state === 'Reachable') return undefined;
    return state === 'Unknown' || consecutive >= settings.healthyThreshold ? 'Reachable' : undefined;
  }
  if (state === 'Reachable') return consecutive >= settings.unhealthyThreshold ? 'Unreachable' : undefined;
  return 'Unreachable';
}

/** `ms` spread by ±JITTER, with `random` in [0, 1). */
export const jittered = (ms: number, random: () => number): number =>
  ms * (1 - JITTER + 2 * JITTER * random());

export interface CheckerDeps {
  readonly manifest: OriginManifest;
  readonly resolver: Resolver;
  readonly health: OriginHealth;
  readonly outlier: OutlierDetector;
  readonly addressBook: AddressBook;
  readonly metrics: CheckMetrics;
  readonly logger: Logger;
  readonly readFile: (path: string) => string | undefined;
  readonly random?: () => number;
}

/** The plan a check runs: the Origin as its sidecar connects to it, with the check's path and timeouts. */
export function checkPlan(
  manifest: OriginManifest,
  settings: CheckSettings,
  readFile: (path: string) => string | undefined,
): Plan {
  return planForOrigin(
    `origin/${manifest.metadata.name}`,
    manifest,
    {
      connectTimeoutMs: settings.connectTimeoutMs,
      responseTimeoutMs: settings.responseTimeoutMs,
      ...(settings.path === undefined ? {} : { path: settings.path }),
    },
    readFile,
  );
}

export class HealthChecker {
  readonly settings: CheckSettings;
  readonly #deps: CheckerDeps;
  readonly #plan: Plan;
  readonly #random: () => number;
  readonly #userAgent = `originguard-health-check/${PRODUCT_VERSION}`;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #consecutive = 0;
  #lastOk: boolean | undefined;

  /** undefined when the Origin's checks are off. */
  static for(deps: CheckerDeps): HealthChecker | undefined {
    const settings = checkSettings(deps.manifest.spec);
    return settings === undefined ? undefined : new HealthChecker(deps, settings);
  }

  private constructor(deps: CheckerDeps, settings: CheckSettings) {
    this.#deps = deps;
    this.settings = settings;
    this.#random = deps.random ?? Math.random;
    this.#plan = checkPlan(deps.manifest, settings, deps.readFile);
    // A check that never comes back must not keep the origin ejected: trials resume after this.
    deps.outlier.checkedBy(settings.intervalMs + settings.connectTimeoutMs + settings.responseTimeoutMs);
  }

  /** First check within one interval (at a random point of it), then every interval. */
  start(): void {
    this.#schedule(this.settings.intervalMs * this.#random());
  }

  /** The origin was ejected (by traffic or a check): check again when the ejection ends. */
  ejected(retryInMs: number): void {
    if (this.#running === undefined) this.#schedule(this.#ejectedDelay(retryInMs));
  }

  /** No more checks; resolves once the one in flight is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#deps.outlier.checkedBy(undefined);
    await this.#running;
  }

  #ejectedDelay(retryInMs: number): number {
    return Math.max(MIN_GAP_MS, Math.min(retryInMs, jittered(this.settings.intervalMs, this.#random)));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
        this.#schedule(this.#nextDelay());
      });
    }, delayMs);
    this.#timer.unref();
  }

  #nextDelay(): number {
    const { outlier } = this.#deps;
    if (outlier.ejected) return this.#ejectedDelay(outlier.remainingMs);
    return jittered(this.settings.intervalMs, this.#random);
  }

  /** Traffic proves what a connect-only check would: skip it while requests reach the origin. */
  #trafficSuffices(): boolean {
    const { health, outlier } = this.#deps;
    if (this.settings.path !== undefined || outlier.ejected || health.state !== 'Reachable') return false;
    return performance.now() - health.trafficReachedAt < this.settings.intervalMs;
  }

  async #tick(): Promise<void> {
    const { metrics, logger } = this.#deps;
    if (this.#trafficSuffices()) {
      metrics.skipped.inc();
      return;
    }
    let outcome: CheckOutcome;
    try {
      outcome = await this.#check();
    } catch (err) {
      // The checklist reports origin failures as results; anything thrown is ours.
      logger.error({ err, origin: this.#deps.health.origin }, 'health check failed to run');
      return;
    }
    if (this.#stopped) return;
    this.#apply(outcome);
  }

  async #check(): Promise<CheckOutcome> {
    const d = await diagnose(this.#plan, {
      vantage: { inCluster: true, fromCluster: false, sidecars: null, notes: [] },
      checklist: {
        resolver: this.#deps.resolver,
        http: this.settings.path !== undefined,
        userAgent: this.#userAgent,
      },
    });
    return checkOutcome(this.#plan, d, this.settings.path === undefined ? undefined : this.settings.expected);
  }

  #apply(outcome: CheckOutcome): void {
    const { health, outlier, addressBook, metrics, logger } = this.#deps;
    this.#consecutive = this.#lastOk === outcome.ok ? this.#consecutive + 1 : 1;
    this.#lastOk = outcome.ok;
    metrics.observe(outcome);
    for (const a of outcome.addresses) {
      if (a.ok) addressBook.reachable(a);
      else addressBook.failed(a, a.cause ?? 'connection_terminated');
    }
    const decision = checkTransition(health.state, outcome.ok, this.#consecutive, this.settings);
    health.onCheck({
      ok: outcome.ok,
      ...(outcome.failure === undefined ? {} : { failure: outcome.failure }),
      ...(outcome.statusCode === undefined ? {} : { statusCode: outcome.statusCode }),
      decision,
      summary: outcome.summary,
    });
    const failure = outcome.failure;
    if (decision === 'Reachable' && outlier.ejected) {
      outlier.onSuccess();
      logger.info(
        { origin: health.origin, summary: outcome.summary },
        'origin back: a health check reached it',
      );
    } else if (failure !== undefined && isConnectPhase(failure.phase) && this.#ejects()) {
      // Only connection failures eject, as for traffic.
      outlier.onCheckFailure(failure.cause);
    }
  }

  /**
   * Whether this failed check ejects the origin (or extends its ejection). From
   * Unknown one failure shows the cause but does not eject: at a pod's start the
   * app next to the sidecar may not listen yet, and requests must not fail fast for it.
   */
  #ejects(): boolean {
    return this.#deps.outlier.ejected || this.#consecutive >= this.settings.unhealthyThreshold;
  }
}
