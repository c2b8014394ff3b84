// Waiting between tries: exponential backoff with jitter (so replicas and pods
// that failed together do not retry together) and an abortable sleep.

export interface BackoffPolicy {
  /** Delay after the first failure. */
  readonly baseMs: number;
  /** Cap of the doubling (before jitter). */
  readonly maxMs: number;
}

/** Delay before the next try after `failures` failures in a row (1 = the first): base × 2^(failures-1), capped, ±20 %. */
export function backoffDelay(
  failures: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exponential * (0.8 + random() * 0.4));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
