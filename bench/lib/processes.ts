// Every process the bench starts goes through here, so that all of them are killed at the end,
// also on error and Ctrl-C. Each child leads its own process group: killing the group also kills
// nginx's workers, which would survive their master.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { rssBytes } from '../../hack/supervisor.ts';
import { procStat } from './pid-stats.ts';

export interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<string>;
  /** The exit code or signal once the process has ended, else undefined. */
  exitStatus(): string | undefined;
  /** The last few KB of stdout and stderr, for error messages. */
  output(): string;
  stdout(): string;
}

export interface StartOptions {
  /** Pin to this CPU with taskset (ignored when pinning is off). */
  cpu?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const live = new Map<number, Started>();
let pinning = false;
const TAIL = 16_384;

/** Pins the bench itself (load generator side) to core 0 when the machine has at least 2 cores. */
export function setUpPinning(): { enabled: boolean; reason: string } {
  if (availableParallelism() < 2) return { enabled: false, reason: 'fewer than 2 CPUs: nothing pinned' };
  const r = spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) return { enabled: false, reason: `taskset failed: ${r.stderr || r.error}` };
  pinning = true;
  return { enabled: true, reason: 'proxy on CPU 1; load generator, origin and bench on CPU 0' };
}

export function start(
  name: string,
  command: string,
  args: readonly string[],
  opts: StartOptions = {},
): Started {
  const [cmd, argv] =
    pinning && opts.cpu !== undefined
      ? ['taskset', ['-c', String(opts.cpu), command, ...args]]
      : [command, [...args]];
  const child = spawn(cmd, argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out = (out + d).slice(-TAIL);
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-TAIL);
  });
  const exited = new Promise<string>((resolve) => {
    child.once('close', (code, signal) => resolve(signal ?? String(code)));
    child.once('error', (e) => resolve(`spawn error: ${e.message}`));
  });
  const pid = child.pid ?? -1;
  let status: string | undefined;
  void exited.then((s) => {
    status = s;
  });
  const started: Started = {
    name,
    child,
    pid,
    exited,
    exitStatus: () => status,
    output: () => `${out}${err}`.trim(),
    stdout: () => out,
  };
  if (pid > 0) {
    live.set(pid, started);
    void exited.then(() => live.delete(pid));
  }
  return started;
}

/**
 * Runs a command (a load generator) to its end and returns its stdout; throws with
 * its output when it exits non-zero or is still running after boundMs.
 */
export async function runToEnd(
  name: string,
  command: string,
  args: readonly string[],
  opts: StartOptions,
  boundMs: number,
): Promise<string> {
  const p = start(name, command, args, opts);
  const bound = new Promise<string>((r) => setTimeout(() => r('timeout'), boundMs).unref());
  const code = await Promise.race([p.exited, bound]);
  if (code !== '0') {
    await stop(p);
    throw new Error(`${name} ended with ${code}: ${p.output()}`);
  }
  return p.stdout();
}

/** SIGTERM to the process group, SIGKILL after graceMs. */
export async function stop(p: Started, graceMs = 2000): Promise<void> {
  if (!live.has(p.pid)) return;
  killGroup(p.pid, 'SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([p.exited, timer])) === 'timeout') {
    killGroup(p.pid, 'SIGKILL');
    await Promise.race([p.exited, new Promise((r) => setTimeout(r, 1000).unref())]);
  }
  // The leader may be gone while group members (nginx workers) linger.
  killGroup(p.pid, 'SIGKILL');
  live.delete(p.pid);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((p) => stop(p)));
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function killAllNow(): void {
  for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
  live.clear();
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}, killing ${live.size} child process(es)\n`);
    killAllNow();
    process.exit(130);
  });
}

/** Every process in the group led by pid (nginx: master + workers), with the CPU it has used. */
function groupMembers(pid: number): { pid: number; cpuSeconds: number }[] {
  const out: { pid: number; cpuSeconds: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat?.pgrp === pid) out.push({ pid: Number(entry), cpuSeconds: stat.cpuSeconds });
  }
  return out;
}

/** Resident set size in bytes of every process in the group led by pid (nginx: master + workers). */
export function groupRss(pid: number): number {
  return groupMembers(pid).reduce((total, p) => total + rssBytes(p.pid), 0);
}

/** Samples groupRss every intervalMs until the returned stop() is called; stop() gives the maximum. */
export function sampleRss(pid: number, intervalMs = 250): () => number {
  let max = groupRss(pid);
  const timer = setInterval(() => {
    max = Math.max(max, groupRss(pid));
  }, intervalMs);
  return () => {
    clearInterval(timer);
    return Math.max(max, groupRss(pid));
  };
}

/** User+system CPU seconds used so far by every process in the group led by pid. */
export function groupCpuSeconds(pid: number): number {
  return groupMembers(pid).reduce((total, p) => total + p.cpuSeconds, 0);
}

/** Busy and total jiffies per CPU, from /proc/stat. */
export function cpuJiffies(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m?.[2]) continue;
    const v = m[2].split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out[Number(m[1])] = { busy: total - idle, total };
  }
  return out;
}

/** Fraction of each CPU that was busy between two cpuJiffies() readings. */
export function cpuBusy(
  before: { busy: number; total: number }[],
  after: { busy: number; total: number }[],
): number[] {
  return after.map((a, i) => {
    const b = before[i];
    const dt = b ? a.total - b.total : 0;
    return b && dt > 0 ? Math.round(((a.busy - b.busy) / dt) * 100) / 100 : Number.NaN;
  });
}
