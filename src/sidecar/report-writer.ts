// Writes this pod's OriginReports: one per served Origin, by server-side apply.
// The report itself is a pure function of the origin's health (buildReport); the
// writer decides when to send it. It writes when it starts serving an Origin or
// the generation it runs changes, on a health or cause change (coalesced over a
// short window), and as a slow heartbeat while the origin is Unreachable; never
// per request. A failed write is retried with backoff and always sends the latest
// state, so nothing is lost while the API server is away: counters are cumulative.
import type { Logger } from 'pino';
import type { OriginReport } from '../api/report.ts';
import { reportLabels, reportName } from '../api/report.ts';
import { backoffDelay } from '../retry.ts';
import { PRODUCT_VERSION } from '../version.ts';
import type { HealthSnapshot } from './health.ts';
import type { PodIdentity } from './pod-identity.ts';

/** The Origin a report is about, as the sidecar runs it. */
export interface ServedOrigin {
  /** namespace/name, as the sidecar keys origins. */
  readonly key: string;
  readonly name: string;
  readonly uid?: string | undefined;
  /** metadata.generation of the spec the sidecar runs. */
  readonly generation: number;
}

/** The report of `identity`'s pod about `origin`, from its health at `now`. Pure. */
export function buildReport(
  snapshot: HealthSnapshot,
  identity: PodIdentity,
  origin: ServedOrigin,
  now: Date,
): OriginReport {
  const unreachable = snapshot.state === 'Unreachable';
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'OriginReport',
    metadata: {
      name: reportName(origin.name, identity.podName),
      namespace: identity.namespace,
      labels: reportLabels(origin.name, identity.podName),
      // Garbage-collected with the pod; neither a controller nor blocking the pod's deletion.
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Pod',
          name: identity.podName,
          uid: identity.podUid,
          controller: false,
          blockOwnerDeletion: false,
        },
      ],
    },
    status: {
      originName: origin.name,
      ...(origin.uid === undefined ? {} : { originUID: origin.uid }),
      podName: identity.podName,
      podUID: identity.podUid,
      ...(identity.nodeName === undefined ? {} : { nodeName: identity.nodeName }),
      originGeneration: origin.generation,
      health: snapshot.state,
      ...(snapshot.source === undefined ? {} : { source: snapshot.source }),
      ...(unreachable && snapshot.cause !== undefined ? { cause: snapshot.cause } : {}),
      ...(unreachable && snapshot.phase !== undefined ? { phase: snapshot.phase } : {}),
      ...(unreachable && snapshot.hint !== undefined ? { hint: snapshot.hint } : {}),
      requests: snapshot.requests,
      failures: snapshot.failures,
      failuresByCause: { ...snapshot.failuresByCause },
      ...(snapshot.lastFailure === undefined ? {} : { lastFailure: snapshot.lastFailure }),
      ...(snapshot.check === undefined ? {} : { healthCheck: snapshot.check }),
      lastTransitionTime: snapshot.lastTransitionTime,
      heartbeatTime: now.toISOString(),
      sidecarVersion: PRODUCT_VERSION,
    },
  };
}

/** The two calls the writer makes; kubeReportApi() is the real one, tests pass a fake. */
export interface ReportApi {
  /** Server-side apply of the whole report. */
  apply(report: OriginReport): Promise<void>;
  /** Deletes the report; resolves too when it does not exist. */
  delete(name: string): Promise<void>;
}

export interface ReportWriterOptions {
  readonly api: ReportApi;
  readonly identity: PodIdentity;
  /** Current health of a served origin, by key. */
  readonly snapshot: (key: string) => HealthSnapshot | undefined;
  readonly logger: Logger;
  /** Window over which health changes are coalesced into one write (default 250 ms). */
  readonly debounceMs?: number;
  /** Rewrite interval while the origin is Unreachable (default 30 s). */
  readonly heartbeatMs?: number;
  /** Retry delays after failed writes: base doubling to max (defaults 1 s, 30 s), ±20 % jitter. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Each write's outcome, for metrics. */
  readonly onResult?: (ok: boolean, err?: unknown) => void;
  readonly now?: () => Date;
  readonly random?: () => number;
}

/** What /status shows of one report. */
export interface ReportState {
  readonly origin: string;
  readonly report: string;
  readonly want: 'present' | 'absent';
  readonly failures: number;
  readonly lastError?: string;
  readonly lastWritten?: string;
  readonly nextWriteInMs?: number;
}

interface Slot {
  origin: ServedOrigin;
  want: 'present' | 'absent';
  timer: NodeJS.Timeout | undefined;
  dueAt: number;
  running: Promise<void> | undefined;
  /** A write was asked for while one was in flight: the delay it asked for. */
  again: number | undefined;
  failures: number;
  lastError: string | undefined;
  lastWritten: string | undefined;
}

export class ReportWriter {
  readonly #opts: ReportWriterOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #debounceMs: number;
  readonly #heartbeatMs: number;
  readonly #now: () => Date;
  #stopped = false;

  constructor(opts: ReportWriterOptions) {
    this.#opts = opts;
    this.#debounceMs = opts.debounceMs ?? 250;
    this.#heartbeatMs = opts.heartbeatMs ?? 30_000;
    this.#now = opts.now ?? (() => new Date());
  }

  /**
   * Makes `served` the set of Origins with a report: a new one, or one whose
   * generation or UID changed, is written now; one no longer served is deleted.
   */
  sync(served: readonly ServedOrigin[]): void {
    const keys = new Set<string>();
    for (const origin of served) {
      keys.add(origin.key);
      const slot = this.#slots.get(origin.key);
      if (slot === undefined) {
        this.#slots.set(origin.key, this.#newSlot(origin));
        this.#request(this.#slots.get(origin.key) as Slot, 0);
        continue;
      }
      const changed =
        slot.want === 'absent' ||
        slot.origin.generation !== origin.generation ||
        slot.origin.uid !== origin.uid;
      slot.origin = origin;
      slot.want = 'present';
      if (changed) this.#request(slot, 0);
    }
    for (const [key, slot] of this.#slots) {
      if (keys.has(key) || slot.want === 'absent') continue;
      slot.want = 'absent';
      this.#request(slot, 0);
    }
  }

  /** The origin's health or cause changed: write within the debounce window. */
  changed(key: string): void {
    const slot = this.#slots.get(key);
    if (slot?.want === 'present') this.#request(slot, this.#debounceMs);
  }

  /** The API server answers again: retry failed writes now instead of at their backoff. */
  retryNow(): void {
    for (const slot of this.#slots.values()) {
      if (slot.failures > 0 && slot.timer !== undefined) this.#arm(slot, 0);
    }
  }

  state(): ReportState[] {
    const now = this.#now().getTime();
    return [...this.#slots.values()].map((s) => ({
      origin: s.origin.key,
      report: reportName(s.origin.name, this.#opts.identity.podName),
      want: s.want,
      failures: s.failures,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
      ...(s.lastWritten === undefined ? {} : { lastWritten: s.lastWritten }),
      ...(s.timer === undefined ? {} : { nextWriteInMs: Math.max(0, s.dueAt - now) }),
    }));
  }

  /** Stops scheduling and waits for the writes in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const slot of this.#slots.values()) clearTimeout(slot.timer);
    await Promise.allSettled([...this.#slots.values()].map((s) => s.running));
  }

  #newSlot(origin: ServedOrigin): Slot {
    return {
      origin,
      want: 'present',
      timer: undefined,
      dueAt: 0,
      running: undefined,
      again: undefined,
      failures: 0,
      lastError: undefined,
      lastWritten: undefined,
    };
  }

  /** Asks for a write within `delayMs`: an earlier one already planned stands; a retry's backoff is kept. */
  #request(slot: Slot, delayMs: number): void {
    if (this.#stopped) return;
    if (slot.running !== undefined) {
      slot.again = Math.min(slot.again ?? delayMs, delayMs);
      return;
    }
    // While writes fail, the retry will send the latest state anyway: no extra attempts.
    if (slot.failures > 0 && slot.timer !== undefined) return;
    if (slot.timer !== undefined && slot.dueAt <= Date.now() + delayMs) return;
    this.#arm(slot, delayMs);
  }

  #arm(slot: Slot, delayMs: number): void {
    clearTimeout(slot.timer);
    slot.dueAt = Date.now() + delayMs;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      slot.running = this.#write(slot).finally(() => {
        slot.running = undefined;
        this.#after(slot);
      });
    }, delayMs);
  }

  async #write(slot: Slot): Promise<void> {
    const { api, identity, logger } = this.#opts;
    const name = reportName(slot.origin.name, identity.podName);
    try {
      if (slot.want === 'absent') {
        await api.delete(name);
      } else {
        const snapshot = this.#opts.snapshot(slot.origin.key);
        if (snapshot === undefined) return;
        await api.apply(buildReport(snapshot, identity, slot.origin, this.#now()));
      }
      if (slot.failures > 0) {
        logger.info({ report: name, failedAttempts: slot.failures }, 'report written after failed attempts');
      }
      slot.failures = 0;
      slot.lastError = undefined;
      slot.lastWritten = this.#now().toISOString();
      this.#opts.onResult?.(true);
    } catch (err) {
      const message = (err as Error).message;
      slot.failures++;
      // One warning per distinct error: an API outage must not flood the log.
      const level = slot.failures === 1 || message !== slot.lastError ? 'warn' : 'debug';
      logger[level]({ report: name, err: message, failures: slot.failures }, 'report write failed; retrying');
      slot.lastError = message;
      this.#opts.onResult?.(false, err);
    }
  }

  /** After a write: retry with backoff, write again if asked meanwhile, heartbeat while Unreachable. */
  #after(slot: Slot): void {
    if (this.#stopped) return;
    const again = slot.again;
    slot.again = undefined;
    if (slot.failures > 0) {
      this.#arm(slot, this.#backoff(slot.failures));
      return;
    }
    if (slot.want === 'absent' && again === undefined) {
      this.#slots.delete(slot.origin.key);
      return;
    }
    if (again !== undefined) this.#request(slot, again);
    if (slot.want === 'present' && this.#opts.snapshot(slot.origin.key)?.state === 'Unreachable') {
      this.#request(slot, this.#heartbeatMs);
    }
  }

  #backoff(failures: number): number {
    const policy = { baseMs: this.#opts.backoffBaseMs ?? 1000, maxMs: this.#opts.backoffMaxMs ?? 30_000 };
    return backoffDelay(failures, policy, this.#opts.random);
  }
}
