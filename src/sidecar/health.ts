// What the sidecar knows about each origin's health: counters by cause, the last
// failure with its hint, and the current state. It outlives config reloads (keyed
// by Origin), feeds the admin /status endpoint, and is what an OriginReport
// publishes. State changes are emitted; per-request updates are only counters.
import { EventEmitter } from 'node:events';
import { CAUSES, type Cause, type Phase } from '../api/causes.ts';
import type { CheckState, EvidenceSource, FailureDetail } from '../api/report.ts';
import type { AddressRecord, AddressState } from '../upstream/address-book.ts';
import { isConnectPhase } from '../upstream/classify.ts';
import type { Failure } from '../upstream/failure.ts';
import { hostPort } from '../upstream/host-port.ts';

export type HealthState = 'Unknown' | 'Reachable' | 'Unreachable';

/** The last failure, in the shape an OriginReport carries it. */
export type LastFailure = FailureDetail;

/** host:port as the report schema wants it (IPv6 in brackets); a name alone for DNS failures. */
function reportAddress(address: string, port: number | undefined): string {
  if (port === undefined) return address;
  return hostPort(address, port);
}

export interface HealthSnapshot {
  readonly origin: string;
  readonly generation: number | undefined;
  readonly state: HealthState;
  /** What set the state: a proxied request or an active check. */
  readonly source?: EvidenceSource;
  readonly cause?: Cause;
  /** Phase of the failure that made the origin Unreachable. */
  readonly phase?: Phase;
  readonly hint?: string;
  readonly ejected: boolean;
  readonly requests: number;
  readonly failures: number;
  readonly failuresByCause: Readonly<Partial<Record<Cause, number>>>;
  readonly lastFailure?: LastFailure;
  readonly lastTransitionTime: string;
  /** What the connector knows of each address it tried (for /status; not reported to the cluster). */
  readonly addresses?: readonly AddressHealth[];
  /** The active checks, once one ran. */
  readonly check?: CheckState;
}

/** One active check's result, as the checker hands it over. */
export interface CheckResult {
  readonly ok: boolean;
  /** The failure in the sidecar's shape, and the status a request would have got. */
  readonly failure?: Failure;
  readonly statusCode?: number;
  /** The state the thresholds decide, if any: see checkTransition() in health-check.ts. */
  readonly decision: 'Reachable' | 'Unreachable' | undefined;
  readonly summary: string;
}

export interface AddressHealth {
  /** host:port. */
  readonly address: string;
  readonly state: AddressState;
  readonly since?: string;
  readonly cause?: string;
}

export interface HealthEvents {
  change: [HealthSnapshot];
}

/** Health of one origin. Emits 'change' when the state or the failing cause changes. */
export class OriginHealth extends EventEmitter<HealthEvents> {
  readonly origin: string;
  generation: number | undefined;
  #ejection: { readonly ejected: boolean } | undefined;
  #addresses: { records(): AddressRecord[] } | undefined;
  #state: HealthState = 'Unknown';
  #cause: Cause | undefined;
  #phase: Phase | undefined;
  #requests = 0;
  #failures = 0;
  readonly #byCause: Partial<Record<Cause, number>> = {};
  #last: LastFailure | undefined;
  #lastConnectFailure: Failure | undefined;
  #transition = new Date().toISOString();
  #source: EvidenceSource | undefined;
  /** Set by a check whose path answered an unexpected status: a request reaching the origin does not disprove it. */
  #heldByCheck = false;
  #trafficReachedAt = Number.NEGATIVE_INFINITY;
  #check: { checks: number; failures: number; consecutive: number; last?: CheckState } = {
    checks: 0,
    failures: 0,
    consecutive: 0,
  };

  constructor(origin: string) {
    super();
    this.origin = origin;
  }

  /** Reads ejection from its owner, the current runtime's outlier detector (health outlives runtimes). */
  watchEjection(owner: { readonly ejected: boolean }): void {
    this.#ejection = owner;
  }

  /** Reads per-address state from the current runtime's connector. */
  watchAddresses(book: { records(): AddressRecord[] }): void {
    this.#addresses = book;
  }

  get ejected(): boolean {
    return this.#ejection?.ejected ?? false;
  }

  get state(): HealthState {
    return this.#state;
  }

  /** The last failure to connect, kept to explain fast-failed requests while ejected. */
  get lastConnectFailure(): Failure | undefined {
    return this.#lastConnectFailure;
  }

  /** performance.now() of the last request the origin answered (checks skip while traffic proves it). */
  get trafficReachedAt(): number {
    return this.#trafficReachedAt;
  }

  onRequest(): void {
    this.#requests++;
  }

  /** The origin accepted a connection or answered: it is reachable. */
  onReachable(): void {
    this.#trafficReachedAt = performance.now();
    if (this.#state !== 'Reachable' && !this.#heldByCheck)
      this.#set('Reachable', undefined, undefined, 'Traffic');
  }

  onFailure(failure: Failure, statusCode: number, connectPhase: boolean): void {
    this.#failures++;
    // A fast-failed request counts under the cause that got the origin ejected.
    const counted = failure.underlying ?? failure;
    this.#byCause[counted.cause] = (this.#byCause[counted.cause] ?? 0) + 1;
    this.#recordFailure(failure, statusCode, connectPhase, 'Traffic');
  }

  /** An active check ended: counted, and the state moves if its thresholds say so. */
  onCheck(result: CheckResult, now = new Date()): void {
    const c = this.#check;
    c.consecutive =
      c.last !== undefined && (c.last.lastResult === 'Success') === result.ok ? c.consecutive + 1 : 1;
    c.checks++;
    if (!result.ok) c.failures++;
    const cause =
      result.failure === undefined ? undefined : (result.failure.underlying ?? result.failure).cause;
    c.last = {
      checks: c.checks,
      failures: c.failures,
      lastTime: now.toISOString(),
      lastResult: result.ok ? 'Success' : 'Failure',
      consecutive: c.consecutive,
      ...(cause === undefined ? {} : { cause }),
      summary: result.summary.length <= 512 ? result.summary : `${result.summary.slice(0, 509)}...`,
    };
    if (result.ok) {
      if (result.decision === 'Reachable') {
        this.#heldByCheck = false;
        if (this.#state !== 'Reachable') this.#set('Reachable', undefined, undefined, 'Probe');
      }
      return;
    }
    const failure = result.failure;
    if (failure === undefined) return;
    this.#recordFailure(failure, result.statusCode ?? 531, result.decision === 'Unreachable', 'Probe');
    if (result.decision === 'Unreachable') this.#heldByCheck = failure.cause === 'destination_unavailable';
  }

  /** Shapes the last failure, and makes the origin Unreachable when `decisive`. */
  #recordFailure(failure: Failure, statusCode: number, decisive: boolean, source: EvidenceSource): void {
    const counted = failure.underlying ?? failure;
    const attempt = counted.attempts.find((a) => a.address === counted.address);
    this.#last = {
      cause: counted.cause,
      phase: counted.phase,
      statusCode,
      errno: counted.code,
      ...(counted.rcode === undefined ? {} : { rcode: counted.rcode }),
      ...(counted.alertId === undefined ? {} : { alertId: counted.alertId }),
      ...(counted.address === undefined ? {} : { address: reportAddress(counted.address, attempt?.port) }),
      attempts: counted.attempts.length,
      elapsedMs: Math.round(counted.elapsedMs),
      hint: CAUSES[counted.cause].hint,
      time: new Date().toISOString(),
      source,
    };
    const connectPhase = isConnectPhase(counted.phase);
    if (connectPhase && failure.underlying === undefined) this.#lastConnectFailure = failure;
    // Only connection failures and response timeouts say the origin cannot be reached (a
    // stream that went silent after its response started came from a reachable origin);
    // a check decides through its thresholds, and its path's status counts too.
    const timedOut = counted.cause === 'http_response_timeout' && counted.phase !== 'response';
    const telling = source === 'Probe' ? decisive : decisive || timedOut;
    if (telling && (this.#state !== 'Unreachable' || this.#cause !== counted.cause)) {
      if (source === 'Traffic') this.#heldByCheck = false;
      this.#set('Unreachable', counted.cause, counted.phase, source);
    }
  }

  #set(state: HealthState, cause: Cause | undefined, phase: Phase | undefined, source: EvidenceSource): void {
    this.#state = state;
    this.#cause = cause;
    this.#phase = phase;
    this.#source = source;
    this.#transition = new Date().toISOString();
    this.emit('change', this.snapshot());
  }

  snapshot(): HealthSnapshot {
    return {
      origin: this.origin,
      generation: this.generation,
      state: this.#state,
      ...(this.#source === undefined ? {} : { source: this.#source }),
      ...(this.#cause === undefined ? {} : { cause: this.#cause, hint: CAUSES[this.#cause].hint }),
      ...(this.#phase === undefined ? {} : { phase: this.#phase }),
      ejected: this.ejected,
      requests: this.#requests,
      failures: this.#failures,
      failuresByCause: { ...this.#byCause },
      ...(this.#last === undefined ? {} : { lastFailure: this.#last }),
      lastTransitionTime: this.#transition,
      ...(this.#addresses === undefined ? {} : { addresses: this.#addresses.records().map(addressHealth) }),
      ...(this.#check.last === undefined ? {} : { check: { ...this.#check.last } }),
    };
  }
}

const addressHealth = (r: AddressRecord): AddressHealth => ({
  address: hostPort(r.address, r.port),
  state: r.state,
  ...(r.since === undefined ? {} : { since: new Date(r.since).toISOString() }),
  ...(r.cause === undefined ? {} : { cause: r.cause }),
});
