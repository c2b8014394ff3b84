// A coalescing, rate-limited work queue, as client-go's workqueue is for Go
// controllers. Each key (an Origin, a namespace) is processed by one worker at a
// time; adds while it waits coalesce into one run; adds while it runs make it run
// once more afterwards; runs of a key are at least `minIntervalMs` apart (so one
// Origin's status is written at most about once a second however many reports
// change); a failed run retries with exponential backoff.
import type { Logger } from 'pino';

export interface WorkQueueOptions {
  name: string;
  process: (key: string) => Promise<unknown>;
  /** Keys processed at once (default 2). */
  concurrency?: number;
  /** Least time between two runs of one key (default 1 s). */
  minIntervalMs?: number;
  /** First retry delay after a failure; doubles per failure up to maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  logger: Logger;
  /** Called after each run, for metrics. */
  onProcessed?: (result: 'success' | 'error', durationMs: number) => void;
}

interface KeyState {
  /** Waiting for its timer or in the ready list. */
  queued: boolean;
  processing: boolean;
  /** Added again while processing: run once more afterwards, no sooner than this. */
  dirty: boolean;
  dirtyDueAt: number;
  dueAt: number;
  lastRunAt: number;
  failures: number;
  timer?: NodeJS.Timeout | undefined;
}

export class WorkQueue {
  private readonly keys = new Map<string, KeyState>();
  private readonly ready: string[] = [];
  private active = 0;
  private running = false;
  private idle: (() => void) | undefined;
  private readonly opts: Required<Omit<WorkQueueOptions, 'onProcessed'>> & WorkQueueOptions;

  constructor(opts: WorkQueueOptions) {
    this.opts = { concurrency: 2, minIntervalMs: 1000, baseBackoffMs: 200, maxBackoffMs: 60_000, ...opts };
  }

  /** Keys waiting or running, for the queue-depth metric. */
  get depth(): number {
    let n = 0;
    for (const s of this.keys.values()) if (s.queued || s.processing) n++;
    return n;
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops taking keys and waits for the runs in progress. Pending keys are dropped. */
  async stop(): Promise<void> {
    this.running = false;
    for (const s of this.keys.values()) clearTimeout(s.timer);
    this.keys.clear();
    this.ready.length = 0;
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  /** Queues `key` to run no sooner than `delayMs` from now (and the key's rate limit). */
  add(key: string, delayMs = 0): void {
    let s = this.keys.get(key);
    if (s === undefined) {
      s = {
        queued: false,
        processing: false,
        dirty: false,
        dirtyDueAt: 0,
        dueAt: 0,
        lastRunAt: 0,
        failures: 0,
      };
      this.keys.set(key, s);
    }
    if (s.processing) {
      const due = Date.now() + delayMs;
      s.dirtyDueAt = s.dirty ? Math.min(s.dirtyDueAt, due) : due;
      s.dirty = true;
      return;
    }
    const due = Math.max(Date.now() + delayMs, s.lastRunAt + this.opts.minIntervalMs);
    if (s.queued && s.dueAt <= due) return;
    this.schedule(key, s, due);
  }

  private schedule(key: string, s: KeyState, due: number): void {
    clearTimeout(s.timer);
    s.queued = true;
    s.dueAt = due;
    const wait = due - Date.now();
    if (wait <= 0) {
      s.timer = undefined;
      this.makeReady(key);
      return;
    }
    s.timer = setTimeout(() => {
      s.timer = undefined;
      this.makeReady(key);
    }, wait);
  }

  private pumpScheduled = false;

  private makeReady(key: string): void {
    if (!this.ready.includes(key)) this.ready.push(key);
    // Start on the next turn of the event loop: adds made in the same turn (a relist,
    // a burst of watch events) coalesce into one run instead of one run plus a rerun.
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running && this.active < this.opts.concurrency && this.ready.length > 0) {
      const key = this.ready.shift() as string;
      const s = this.keys.get(key);
      if (s === undefined) continue;
      s.queued = false;
      s.processing = true;
      s.dirty = false;
      this.active++;
      void this.run(key, s);
    }
  }

  private async run(key: string, s: KeyState): Promise<void> {
    s.lastRunAt = Date.now();
    // A reconcile often takes well under a millisecond: time it finer than Date.now().
    const started = performance.now();
    let ok = true;
    try {
      await this.opts.process(key);
      s.failures = 0;
    } catch (err) {
      ok = false;
      s.failures++;
      this.opts.logger.warn(
        { queue: this.opts.name, key, failures: s.failures, err: (err as Error).message },
        'reconcile failed; will retry',
      );
    }
    this.opts.onProcessed?.(ok ? 'success' : 'error', performance.now() - started);
    s.processing = false;
    this.active--;
    if (!this.running) {
      if (this.active === 0) this.idle?.();
      return;
    }
    if (!ok) {
      const backoff = Math.min(this.opts.maxBackoffMs, this.opts.baseBackoffMs * 2 ** (s.failures - 1));
      this.schedule(key, s, Math.max(Date.now() + backoff, s.lastRunAt + this.opts.minIntervalMs));
    } else if (s.dirty) {
      this.schedule(key, s, Math.max(s.dirtyDueAt, s.lastRunAt + this.opts.minIntervalMs));
    } else {
      // Keep the key's last run time until its rate limit has passed, then forget it.
      s.timer = setTimeout(() => {
        if (!s.queued && !s.processing) this.keys.delete(key);
      }, this.opts.minIntervalMs);
    }
    this.pump();
  }
}
