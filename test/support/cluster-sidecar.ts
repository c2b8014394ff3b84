// Runs `originguard sidecar --cluster` as the webhook would start it in a pod: a
// separate process, its identity in ORIGINGUARD_* variables, a pod-bound token,
// the cluster CA and the downward-API labels file in one directory, and the API
// server in KUBERNETES_SERVICE_HOST/PORT. Also a TCP proxy in front of the API
// server that can be closed and reopened, to take the API away from a sidecar.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly adminPort: number;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
  waitForLog(msg: RegExp, ms?: number): Promise<Record<string, unknown>>;
  /** GET on the admin port: status code and body text; status 0 when nothing answers. */
  admin(path: string): Promise<{ status: number; body: string }>;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number | null>;
}

export function spawnClusterSidecar(
  env: NodeJS.ProcessEnv,
  adminPort: number,
  extraArgs: readonly string[] = [],
): SidecarProcess {
  const args = [CLI, 'sidecar', '--cluster', `--admin-port=${adminPort}`, '--admin-address=127.0.0.1'];
  const child = spawn(process.execPath, [...args, ...extraArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
    for (const w of waiters) w();
  });
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const describe = () =>
    `logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${stderr.join('')}`;
  return {
    child,
    adminPort,
    logs,
    stderr,
    exited,
    waitForLog(msg, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = logs.find((l) => msg.test(String(l.msg)));
          if (hit === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for log ${msg}; ${describe()}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    async admin(path) {
      try {
        const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
        return { status: res.status, body: await res.text() };
      } catch (err) {
        // Not listening yet (or any more): status 0, as a probe that got no answer.
        return { status: 0, body: String((err as Error).cause ?? err) };
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A TCP proxy to the API server that can be closed (connections reset, port refusing) and reopened on the same port. */
export class ApiProxy {
  readonly #target: URL;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(target: string) {
    this.#target = new URL(target);
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(Number(this.#target.port), this.#target.hostname);
      client.pipe(upstream).pipe(client);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Stops listening and resets every connection: the API server is gone for whoever is behind the proxy. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.resetAndDestroy();
    this.#sockets.clear();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }
}
