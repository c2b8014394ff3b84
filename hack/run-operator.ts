// Runs `originguard operator` as a separate process against the test control
// plane, as it runs in a pod: real flags, real signals, its probes and metrics
// on loopback ports, its log lines kept for assertions and failure messages.
import { type ChildProcess, spawn } from 'node:child_process';
import { collectJsonLines, waitForReadyz } from './child-output.ts';
import { freePort } from './net.ts';
import { metricsAt, sumOf } from './prom-text.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
/** The built artifact as the image runs it (npm run build first): `command: [process.execPath, BUNDLE_CLI]`. */
export const BUNDLE_CLI = new URL('../bin/originguard.js', import.meta.url).pathname;

export interface OperatorProcess {
  readonly child: ChildProcess;
  readonly webhookPort: number;
  readonly healthPort: number;
  readonly metricsPort: number;
  /** JSON log lines, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  /** Polls /readyz until it answers 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** A metric's value from /metrics (sum over label sets matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** SIGTERM (graceful) or SIGKILL (crash), then waits for the exit. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<number | null>;
  /** Recent log text, for failure messages. */
  tail(lines?: number): string;
}

export interface OperatorProcessOptions {
  kubeconfig: string;
  /** The operator's namespace (Lease, webhook Secret). */
  namespace: string;
  args?: string[];
  /** false: no webhook (--webhook-bind-address 0). */
  webhook?: boolean;
  webhookPort?: number;
  env?: Record<string, string>;
  /**
   * What runs `originguard` (default: this Node on src/cli.ts), e.g. `podman run … <image>`
   * for the image; `kubeconfig` is then the path the container sees.
   */
  command?: readonly string[];
  /** Default: debug (tests assert on debug lines); a later --log-level in `args` wins. */
  logLevel?: string;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export async function startOperator(opts: OperatorProcessOptions): Promise<OperatorProcess> {
  const webhookPort = opts.webhookPort ?? (await freePort());
  const healthPort = await freePort();
  const metricsPort = await freePort();
  const [program = process.execPath, ...prefix] = opts.command ?? [process.execPath, CLI];
  const args = [
    ...prefix,
    'operator',
    `--kubeconfig=${opts.kubeconfig}`,
    `--namespace=${opts.namespace}`,
    `--health-probe-bind-address=127.0.0.1:${healthPort}`,
    `--metrics-bind-address=127.0.0.1:${metricsPort}`,
    opts.webhook === false ? '--webhook-bind-address=0' : `--webhook-bind-address=127.0.0.1:${webhookPort}`,
    '--webhook-host=127.0.0.1',
    `--log-level=${opts.logLevel ?? 'debug'}`,
    ...(opts.args ?? []),
  ];
  const child = spawn(program, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  running.add(child);
  const logs: Record<string, unknown>[] = [];
  const raw: string[] = [];
  collectJsonLines(child.stdout, { logs, raw });
  child.stderr?.on('data', (d: Buffer) => raw.push(...d.toString().split('\n')));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const tail = (n = 40) => raw.slice(-n).join('\n');
  const proc: OperatorProcess = {
    child,
    webhookPort,
    healthPort,
    metricsPort,
    logs,
    exited,
    tail,
    waitReady: (timeoutMs = 30_000) => waitForReadyz('operator', child, healthPort, tail, timeoutMs),
    async metric(name, labels = {}) {
      return sumOf(await metricsAt(metricsPort), name, labels);
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
  return proc;
}
