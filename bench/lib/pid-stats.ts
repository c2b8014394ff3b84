// Resident memory and CPU time of one process, read from /proc, and a sampler
// that keeps the peak and every reading over a window (the operator benchmark
// samples the operator's RSS while pods are created, relisted and restarted).
// No signal handlers here (unlike processes.ts): the operator benchmark cleans up itself.
import { readFileSync } from 'node:fs';
import { rssBytes } from '../../hack/supervisor.ts';

export const MiB = 2 ** 20;

/** Process group and user + system CPU seconds of `pid`, from /proc/<pid>/stat; undefined once it has exited. */
export function procStat(pid: number | string): { pgrp: number; cpuSeconds: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state(0) ppid(1) pgrp(2) ... utime(11) stime(12); comm may hold spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pgrp: Number(f[2]), cpuSeconds: (Number(f[11]) + Number(f[12])) / 100 }; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds `pid` has used. */
export const cpuSecondsOf = (pid: number): number => procStat(pid)?.cpuSeconds ?? 0;

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
    const v = rssBytes(pid());
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
