import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from '../../src/kube/work-queue.ts';

const logger = pino({ level: 'silent' });

describe('WorkQueue', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function recording(
    opts: { minIntervalMs?: number; fail?: (key: string, n: number) => boolean; holdMs?: number } = {},
  ) {
    const runs: { key: string; at: number }[] = [];
    const queue = new WorkQueue({
      name: 'test',
      minIntervalMs: opts.minIntervalMs ?? 1000,
      baseBackoffMs: 100,
      maxBackoffMs: 800,
      logger,
      process: async (key) => {
        runs.push({ key, at: Date.now() });
        if (opts.holdMs !== undefined) await new Promise((r) => setTimeout(r, opts.holdMs));
        if (opts.fail?.(key, runs.filter((r) => r.key === key).length)) throw new Error('boom');
      },
    });
    queue.start();
    return { queue, runs };
  }

  it('coalesces many adds of one key into one run', async () => {
    const { queue, runs } = recording();
    for (let i = 0; i < 200; i++) queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs.map((r) => r.key)).toEqual(['ns/a']);
  });

  it('runs one key at most once per minInterval however often it changes', async () => {
    const { queue, runs } = recording({ minIntervalMs: 1000 });
    // A change every 10 ms for 5 s: 500 adds.
    for (let t = 0; t < 5000; t += 10) {
      queue.add('ns/a');
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(2000);
    expect(runs.length).toBeGreaterThanOrEqual(5);
    expect(runs.length).toBeLessThanOrEqual(6);
    for (let i = 1; i < runs.length; i++) {
      expect((runs[i]?.at ?? 0) - (runs[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(1000);
    }
  });

  it('runs a key again after a run when it was added during that run', async () => {
    const { queue, runs } = recording({ minIntervalMs: 100, holdMs: 50 });
    queue.add('k');
    await vi.advanceTimersByTimeAsync(10);
    queue.add('k'); // while running
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.length).toBe(2);
    expect((runs[1]?.at ?? 0) - (runs[0]?.at ?? 0)).toBeGreaterThanOrEqual(100);
  });

  it('honours a delay asked for while the key runs (a reconcile asking to look again later)', async () => {
    const { queue, runs } = recording({ minIntervalMs: 100, holdMs: 10 });
    queue.add('k');
    await vi.advanceTimersByTimeAsync(5);
    queue.add('k', 2000);
    await vi.advanceTimersByTimeAsync(1500);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toHaveLength(2);
    expect((runs[1]?.at ?? 0) - (runs[0]?.at ?? 0)).toBeGreaterThanOrEqual(2000);
  });

  it('keeps different keys independent', async () => {
    const { queue, runs } = recording({ minIntervalMs: 1000 });
    queue.add('a');
    queue.add('b');
    queue.add('c');
    await vi.advanceTimersByTimeAsync(10);
    expect(runs.map((r) => r.key).sort()).toEqual(['a', 'b', 'c']);
  });

  it('retries a failing key with growing backoff until it succeeds', async () => {
    const { queue, runs } = recording({ minIntervalMs: 0, fail: (_k, n) => n <= 3 });
    queue.add('k');
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs.length).toBe(4);
    const gaps = runs.slice(1).map((r, i) => r.at - (runs[i]?.at ?? 0));
    // Doubling from 100 ms; the queue starts work on the next event-loop turn, a ms or so later.
    expect(gaps.map((g) => Math.round(g / 100) * 100)).toEqual([100, 200, 400]);
  });

  it('caps the backoff', async () => {
    const { queue, runs } = recording({ minIntervalMs: 0, fail: () => true });
    queue.add('k');
    await vi.advanceTimersByTimeAsync(5000);
    const gaps = runs.slice(1).map((r, i) => r.at - (runs[i]?.at ?? 0));
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...gaps)).toBeLessThan(810);
    await queue.stop();
  });

  it('stop() waits for the run in progress and drops pending keys', async () => {
    const { queue, runs } = recording({ minIntervalMs: 0, holdMs: 100 });
    queue.add('a');
    await vi.advanceTimersByTimeAsync(1);
    queue.add('b', 500);
    const stopped = queue.stop();
    await vi.advanceTimersByTimeAsync(1000);
    await stopped;
    expect(runs.map((r) => r.key)).toEqual(['a']);
    expect(queue.depth).toBe(0);
  });
});
