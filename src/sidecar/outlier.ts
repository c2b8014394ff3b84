// Outlier ejection for one origin, like Envoy's consecutive local-origin
// failures: after N connection failures in a row the origin is ejected, and
// requests are answered 531 at once for base × ejections (capped), while one
// trial request at a time probes it. Only connection failures count: an origin
// that accepts connections but answers slowly is reachable. With active health
// checks the checks probe instead of a trial request (no user request is spent
// on a dead origin) and may eject it themselves. This detector is the one owner
// of the ejection state; who shows it (metrics, logs, /status) is told through
// onChange.
import type { Cause } from '../api/causes.ts';

export interface OutlierConfig {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
}

/** A change of ejection: ejected (again) for `retryInMs` after a failure of `cause`, or recovered. */
export type EjectionChange =
  | { readonly ejected: true; readonly cause: Cause; readonly retryInMs: number; readonly ejections: number }
  | { readonly ejected: false };

export type Admission =
  | { readonly kind: 'pass' }
  | { readonly kind: 'trial' }
  | { readonly kind: 'reject'; readonly retryInMs: number };

export class OutlierDetector {
  readonly #config: OutlierConfig;
  readonly #now: () => number;
  readonly #onChange: ((change: EjectionChange) => void) | undefined;
  #failures = 0;
  #ejections = 0;
  #ejectedUntil = 0;
  #trialInFlight = false;
  /** Set while health checks decide recovery: how long past an ejection's end they may take before trials resume. */
  #checkGraceMs: number | undefined;

  constructor(
    config: OutlierConfig,
    now: () => number = performance.now.bind(performance),
    onChange?: (change: EjectionChange) => void,
  ) {
    this.#config = config;
    this.#now = now;
    this.#onChange = onChange;
  }

  get ejected(): boolean {
    return this.#ejections > 0;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** ms until the current ejection ends (0 when not ejected or past its end). */
  get remainingMs(): number {
    return this.#ejections === 0 ? 0 : Math.max(0, this.#ejectedUntil - this.#now());
  }

  /**
   * Hands recovery to health checks: while ejected, no trial request is admitted
   * until `graceMs` past the ejection's end (a check that never comes must not
   * keep the origin ejected for ever). undefined gives it back to trials.
   */
  checkedBy(graceMs: number | undefined): void {
    this.#checkGraceMs = graceMs;
  }

  /** Decides whether a request may try the origin now. A 'trial' must be reported back. */
  admit(): Admission {
    if (this.#ejections === 0) return PASS;
    const now = this.#now();
    const checkedUntil = this.#ejectedUntil + (this.#checkGraceMs ?? 0);
    if (this.#checkGraceMs !== undefined && now < checkedUntil) {
      return { kind: 'reject', retryInMs: Math.max(0, this.#ejectedUntil - now) };
    }
    if (now < this.#ejectedUntil || this.#trialInFlight) {
      return { kind: 'reject', retryInMs: Math.max(0, this.#ejectedUntil - now) };
    }
    this.#trialInFlight = true;
    return TRIAL;
  }

  /** A connection was established (or a kept-alive one used): the origin is reachable. */
  onSuccess(): void {
    const wasEjected = this.#ejections > 0;
    this.#failures = 0;
    this.#ejections = 0;
    this.#trialInFlight = false;
    if (wasEjected) this.#onChange?.({ ejected: false });
  }

  /**
   * A connection could not be established, for `cause`. `trial` says whether this
   * request was admitted as the probe. Returns true when the origin is (re-)ejected now.
   */
  onConnectFailure(trial: boolean, cause: Cause): boolean {
    this.#failures++;
    if (this.#ejections > 0) {
      // Requests admitted before the ejection fail too; only a failed probe extends it.
      if (!trial) return false;
      this.#trialInFlight = false;
      return this.#eject(cause);
    }
    return this.#failures >= this.#config.consecutiveFailures ? this.#eject(cause) : false;
  }

  #eject(cause: Cause): boolean {
    this.#ejections++;
    const interval = Math.min(this.#config.baseEjectionMs * this.#ejections, this.#config.maxEjectionMs);
    this.#ejectedUntil = this.#now() + interval;
    this.#onChange?.({ ejected: true, cause, retryInMs: interval, ejections: this.#ejections });
    return true;
  }

  /** A health check found the origin unreachable (for `cause`): eject it, or extend the ejection. */
  onCheckFailure(cause: Cause): void {
    this.#failures++;
    this.#eject(cause);
  }

  /** A trial ended without telling anything about the origin (client gone): let another probe. */
  onTrialAbandoned(): void {
    this.#trialInFlight = false;
  }
}

const PASS: Admission = { kind: 'pass' };
const TRIAL: Admission = { kind: 'trial' };
