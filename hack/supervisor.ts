// Runs the control plane's processes: each with its own log file, watched by a
// detached watchdog that cleans up if the parent dies, stopped in order.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The one error the harness throws; `code` says which step failed. */
export class ControlPlaneError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ControlPlaneError';
    this.code = code;
  }
}

export interface ProcessInfo {
  name: 'etcd' | 'kube-apiserver' | 'kube-controller-manager';
  pid: number;
  /** File the process's stdout and stderr go to. */
  logFile: string;
}

/** A spawned process; `exitCode` stays undefined while it runs. */
export interface Started {
  name: ProcessInfo['name'];
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  exitCode: number | null | undefined;
}

/** Spawns `bin` with stdout and stderr appended to `<logs>/<name>.log`, and tells the watchdog its pid. */
export function spawnLogged(
  name: ProcessInfo['name'],
  bin: string,
  args: string[],
  logs: string,
  watchdog: Watchdog,
): Started {
  const logFile = join(logs, `${name}.log`);
  const fd = openSync(logFile, 'a');
  // Own process group: a Ctrl-C in the terminal reaches the parent, which then
  // stops the control plane in order (etcd last) instead of everything at once.
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const started: Started = {
    name,
    child,
    logFile,
    exitCode: undefined,
    exited: new Promise((res) => {
      child.once('exit', (code, signal) => {
        started.exitCode = code ?? (signal ? 128 : null);
        res();
      });
      child.once('error', (err) => {
        started.exitCode = 127;
        void writeFile(logFile, `spawn ${bin}: ${err.message}\n`, { flag: 'a' });
        res();
      });
    }),
  };
  if (child.pid !== undefined) watchdog.watch(child.pid);
  return started;
}

/** Polls `check` until true; fails fast, with the log tail, if `proc` exits or the deadline passes. */
export async function waitUntil(
  deadline: number,
  proc: Started,
  what: string,
  check: () => Promise<boolean>,
): Promise<void> {
  for (;;) {
    if (proc.exitCode !== undefined) {
      throw startupError(`${proc.name} exited with code ${proc.exitCode} before ${what}`, proc);
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      throw startupError(`timed out waiting for ${what}`, proc);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** A start-up failure whose message ends with the last lines of the process's log: it says why. */
export function startupError(message: string, proc: Started): ControlPlaneError {
  let logTail = '';
  try {
    logTail = tail(readFileSync(proc.logFile, 'utf8'), 40);
  } catch {
    logTail = '(no log)';
  }
  return new ControlPlaneError(
    'CONTROL_PLANE_START_FAILED',
    `control plane did not start: ${message}\n--- last lines of ${proc.name}'s log ---\n${logTail}`,
  );
}

/** SIGTERM each process in reverse start order, SIGKILL after `graceMs` (default 10 s). */
export async function stopAll(started: Started[], graceMs = 10_000): Promise<void> {
  // Reverse order: controllers first, etcd last, so nothing logs errors about a vanished store.
  for (const s of [...started].reverse()) {
    if (s.exitCode !== undefined) continue;
    s.child.kill('SIGTERM');
    const timer = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
    await s.exited;
    clearTimeout(timer);
  }
}

export interface Watchdog {
  watch(pid: number): void;
  /** Normal shutdown: the watchdog exits without touching anything. */
  release(): void;
}

// A tiny detached process that outlives a killed parent: when its stdin pipe
// closes (the parent died, even by SIGKILL) it kills the control plane's
// processes and removes the temp dir. It ignores SIGINT/SIGTERM so a Ctrl-C to
// the terminal's process group cannot take it down before it has cleaned up.
const WATCHDOG = `
const { rmSync } = require('node:fs');
const dir = process.argv[1];
const pids = new Set();
let released = false;
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (line === 'release') released = true;
    else if (/^\\d+$/.test(line)) pids.add(Number(line));
  }
});
process.stdin.on('end', () => {
  if (released) process.exit(0);
  const kill = (sig) => { for (const p of pids) { try { process.kill(-p, sig); } catch {} try { process.kill(p, sig); } catch {} } };
  kill('SIGTERM');
  setTimeout(() => { kill('SIGKILL'); try { rmSync(dir, { recursive: true, force: true }); } catch {} process.exit(0); }, 3000);
});
`;

/** Starts the watchdog for `dir`; `watch` each pid, `release` on a normal stop. */
export function startWatchdog(dir: string): Watchdog {
  const child = spawn(process.execPath, ['-e', WATCHDOG, dir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  // Never keep the parent's event loop alive for the watchdog's sake.
  child.unref();
  const stdin = child.stdin;
  (stdin as unknown as { unref?: () => void } | null)?.unref?.();
  const send = (line: string): void => {
    if (stdin?.writable) stdin.write(`${line}\n`);
  };
  return {
    watch: (pid) => send(String(pid)),
    release: () => {
      send('release');
      stdin?.end();
    },
  };
}

/** Resident memory of `pid` in bytes, 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The last `lines` lines of `text`. */
export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
