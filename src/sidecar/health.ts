// What the sidecar knows about each origin's health: counters by cause, the last
// failure with its hint, and the current state. It outlives config reloads (keyed
// by Origin), feeds the admin /status endpoint, and is what an OriginReport
// publishes. State changes are emitted; per-request updates are only counters.
import { EventEmitter } from 'node:events';
import { CAUSES, type Cause, type Phase } from '../api/causes.ts';
import type { FailureDetail } from '../api/report.ts';
import type { AddressRecord, AddressState } from '../upstream/address-book.ts';
import type { Failure } from '../upstream/failure.ts';

export type HealthState = 'Unknown' | 'Reachable' | 'Unreachable';

/** The last failure, in the shape an OriginReport carries it. */
export type LastFailure = FailureDetail;

/** host:port as the report schema wants it (IPv6 in brackets); a name alone for DNS failures. */
function hostPort(address: string, port: number | undefined): string {
  if (port === undefined) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface HealthSnapshot {
  readonly origin: string;
  readonly generation: number | undefined;
  readonly state: HealthState;
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

  onRequest(): void {
    this.#requests++;
  }

  /** The origin accepted a connection or answered: it is reachable. */
  onReachable(): void {
    if (this.#state !== 'Reachable') this.#set('Reachable', undefined, undefined);
  }

  onFailure(failure: Failure, statusCode: number, connectPhase: boolean): void {
    this.#failures++;
    // A fast-failed request counts under the cause that got the origin ejected.
    const counted = failure.underlying ?? failure;
    this.#byCause[counted.cause] = (this.#byCause[counted.cause] ?? 0) + 1;
    const attempt = counted.attempts.find((a) => a.address === counted.address);
    this.#last = {
      cause: counted.cause,
      phase: counted.phase,
      statusCode,
      errno: counted.code,
      ...(counted.rcode === undefined ? {} : { rcode: counted.rcode }),
      ...(counted.alertId === undefined ? {} : { alertId: counted.alertId }),
      ...(counted.address === undefined ? {} : { address: hostPort(counted.address, attempt?.port) }),
      attempts: counted.attempts.length,
      elapsedMs: Math.round(counted.elapsedMs),
      hint: CAUSES[counted.cause].hint,
      time: new Date().toISOString(),
    };
    if (connectPhase && failure.underlying === undefined) this.#lastConnectFailure = failure;
    // Only connection failures and response timeouts say the origin cannot be reached; a
    // stream that went silent after its response started came from a reachable origin.
    if (connectPhase || (counted.cause === 'http_response_timeout' && counted.phase !== 'response')) {
      if (this.#state !== 'Unreachable' || this.#cause !== counted.cause)
        this.#set('Unreachable', counted.cause, counted.phase);
    }
  }

  #set(state: HealthState, cause: Cause | undefined, phase: Phase | undefined): void {
    this.#state = state;
    this.#cause = cause;
    this.#phase = phase;
    this.#transition = new Date().toISOString();
    this.emit('change', this.snapshot());
  }

  snapshot(): HealthSnapshot {
    return {
      origin: this.origin,
      generation: this.generation,
      state: this.#state,
      ...(this.#cause === undefined ? {} : { cause: this.#cause, hint: CAUSES[this.#cause].hint }),
      ...(this.#phase === undefined ? {} : { phase: this.#phase }),
      ejected: this.ejected,
      requests: this.#requests,
      failures: this.#failures,
      failuresByCause: { ...this.#byCause },
      ...(this.#last === undefined ? {} : { lastFailure: this.#last }),
      lastTransitionTime: this.#transition,
      ...(this.#addresses === undefined ? {} : { addresses: this.#addresses.records().map(addressHealth) }),
    };
  }
}

const addressHealth = (r: AddressRecord): AddressHealth => ({
  address: hostPort(r.address, r.port),
  state: r.state,
  ...(r.since === undefined ? {} : { since: new Date(r.since).toISOString() }),
  ...(r.cause === undefined ? {} : { cause: r.cause }),
});
