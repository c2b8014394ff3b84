// The things measured side by side, how each is started, and when it counts as ready.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort as freeLoopbackPort } from '../../hack/net.ts';
import { buildRequest, HttpConnection } from './http-client.ts';
import { nginxProxy, ORIGIN_BODY } from './nginx.ts';
import { type Started, start } from './processes.ts';

export type SubjectId = 'direct' | 'nginx' | 'fastify-http-proxy' | 'originguard';

export const SUBJECTS: readonly { id: SubjectId; label: string }[] = [
  { id: 'direct', label: 'direct to origin' },
  { id: 'nginx', label: 'nginx' },
  { id: 'fastify-http-proxy', label: '@fastify/http-proxy' },
  { id: 'originguard', label: 'originguard' },
];

export const PROXY_CPU = 1;
export const LOAD_CPU = 0;

export interface Running {
  /** Where the load goes. */
  port: number;
  proc?: Started;
  adminPort?: number;
}

export interface BenchContext {
  dir: string;
  root: string;
  originPort: number;
  originguardCli: string;
}

/** A loopback port that nothing listens on: the kernel's pick, then checked to refuse connections. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await freeLoopbackPort();
    if (await refuses(port)) return port;
  }
  throw new Error('no free loopback port after 10 attempts');
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

export interface UpstreamSpec {
  host: string;
  port: number;
  connectTimeout?: string;
}

/** A one-Origin config file; `extra` adds spec lines (indented two spaces) such as `hosts: [a.test]`. */
export function originguardConfig(
  listenPort: number,
  upstream: UpstreamSpec,
  extra: readonly string[] = [],
): string {
  return `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: bench, namespace: default}
spec:
  selector: {matchLabels: {app: bench}}
  listen: {port: ${listenPort}, address: 127.0.0.1}
  upstream: {host: ${upstream.host}, port: ${upstream.port}}
  timeouts: {connect: ${upstream.connectTimeout ?? '5s'}, response: 60s}
${extra.map((l) => `  ${l}\n`).join('')}`;
}

/**
 * Starts `originguard sidecar` on CPU 1 with a one-Origin config file; `extraArgs`
 * come last (a later --log-level wins), `spec` adds lines to the Origin's spec.
 */
export async function startOriginguard(
  ctx: Pick<BenchContext, 'dir' | 'root' | 'originguardCli'>,
  name: string,
  upstream: UpstreamSpec,
  extraArgs: readonly string[] = [],
  spec: readonly string[] = [],
): Promise<Running & { adminPort: number; proc: Started }> {
  const port = await freePort();
  const adminPort = await freePort();
  const config = join(ctx.dir, `${name}.yaml`);
  writeFileSync(config, originguardConfig(port, upstream, spec));
  const args = [
    ctx.originguardCli,
    'sidecar',
    '--config',
    config,
    '--admin-port',
    String(adminPort),
    '--admin-address',
    '127.0.0.1',
    '--log-level',
    'warn',
    ...extraArgs,
  ];
  const proc = start(name, process.execPath, args, {
    cpu: PROXY_CPU,
    cwd: ctx.root,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return { port, adminPort, proc };
}

export async function startSubject(ctx: BenchContext, id: SubjectId): Promise<Running> {
  switch (id) {
    case 'direct':
      return { port: ctx.originPort };
    case 'nginx': {
      const port = await freePort();
      const proc = start('nginx proxy', 'nginx', nginxProxy(ctx.dir, port, ctx.originPort), {
        cpu: PROXY_CPU,
      });
      return { port, proc };
    }
    case 'fastify-http-proxy': {
      const port = await freePort();
      const script = join(ctx.root, 'bench/servers/fastify-http-proxy.ts');
      const args = [script, '--port', String(port), '--upstream-port', String(ctx.originPort)];
      const proc = start('@fastify/http-proxy', process.execPath, args, {
        cpu: PROXY_CPU,
        env: { ...process.env, NODE_ENV: 'production' },
      });
      return { port, proc };
    }
    case 'originguard':
      return startOriginguard(ctx, 'originguard', { host: '127.0.0.1', port: ctx.originPort });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls every 2 ms with a fresh connection until `accept` says yes; resolves with the ms since t0.
 * Throws if the process exits first or after boundMs.
 */
export async function pollUntil(
  port: number,
  path: string,
  accept: (status: number, body: Buffer) => boolean,
  t0: number,
  boundMs: number,
  proc?: Started,
): Promise<number> {
  return (await pollUntilResponse(port, path, accept, t0, boundMs, proc)).ms;
}

/** pollUntil, also giving the accepted response's Server and Via headers. */
export async function pollUntilResponse(
  port: number,
  path: string,
  accept: (status: number, body: Buffer) => boolean,
  t0: number,
  boundMs: number,
  proc?: Started,
): Promise<{ ms: number; server: string; via: string }> {
  const request = buildRequest(`127.0.0.1:${port}`, path);
  let last = 'no answer';
  while (performance.now() - t0 < boundMs) {
    const exited = proc?.exitStatus();
    if (exited !== undefined)
      throw new Error(`exited with ${exited} before ready: ${proc?.output().slice(-2000)}`);
    try {
      const conn = await HttpConnection.connect('127.0.0.1', port, 500);
      try {
        const res = await conn.send(request, 1000);
        if (accept(res.status, res.body)) {
          const ms = performance.now() - t0;
          return { ms, server: res.headers.get('server') ?? '', via: res.headers.get('via') ?? '' };
        }
        last = `HTTP ${res.status}`;
      } finally {
        conn.close();
      }
    } catch (e) {
      last = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
    await sleep(2);
  }
  throw new Error(`not ready within ${boundMs} ms (last: ${last}): ${proc?.output().slice(-2000) ?? ''}`);
}

export const servesOrigin = (status: number, body: Buffer) =>
  status === 200 && body.toString() === ORIGIN_BODY;
export const isOk = (status: number) => status === 200;
