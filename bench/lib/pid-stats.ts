// Resident memory and CPU time of one process, read from /proc, and a sampler
// that keeps the peak and every reading over a window (the operator benchmark
// samples the operator's RSS while pods are created, relisted and restarted).
import { readFileSync } from 'node:fs';
import { rssBytes } from '../../hack/supervisor.ts';

export const MiB = 2 ** 20;

/** VmRSS of `pid` in bytes; 0 once it has exited. */
export const rssOf = rssBytes;

/** User + system CPU seconds `pid` has used. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

export interface RssWindow {
  peak: number;
  /** Median reading: what the process settles at rather than its spikes. */
  median: number;
  samples: number;
}

/** Samples `pid`'s RSS every intervalMs until stop(). */
export function sampleRssOf(pid: () => number, intervalMs = 100): { stop(): RssWindow; peak(): number } {
  const readings: number[] = [];
  const read = () => {
    const v = rssOf(pid());
    if (v > 0) readings.push(v);
  };
  read();
  const timer = setInterval(read, intervalMs);
  const peak = () => readings.reduce((a, b) => Math.max(a, b), 0);
  return {
    peak,
    stop() {
      clearInterval(timer);
      read();
      const sorted = [...readings].sort((a, b) => a - b);
      return { peak: peak(), median: sorted[Math.floor(sorted.length / 2)] ?? 0, samples: readings.length };
    },
  };
}
