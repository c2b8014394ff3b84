// `originguard sidecar --config` as a user runs it: a separate process, a real
// file, real signals. (Cluster mode against an API server: test/cluster/sidecar-cluster.test.ts.)
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { podEnv } from '../../hack/pod-files.ts';
import { SIDECAR_ENV } from '../../src/api/contract.ts';
import { type EchoResponse, startHttpOrigin } from '../support/origins.ts';
import { freePort, get } from '../support/run-sidecar.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

function originYaml(listenPort: number, upstreamPort: number, extra = ''): string {
  return `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: app, namespace: test}
spec:
  selector: {matchLabels: {app: app}}
  listen: {port: ${listenPort}, address: 127.0.0.1}
  upstream: {host: 127.0.0.1, port: ${upstreamPort}}
${extra}`;
}

interface Proc {
  readonly child: ChildProcess;
  readonly out: string[];
  readonly err: string[];
  readonly exited: Promise<number | null>;
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
}

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
});

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const out: string[] = [];
  const err: string[] = [];
  const waiters = new Set<() => void>();
  const feed = (into: string[]) => (d: Buffer) => {
    into.push(
      ...d
        .toString()
        .split('\n')
        .filter((l) => l !== ''),
    );
    for (const w of waiters) w();
  };
  child.stdout?.on('data', feed(out));
  child.stderr?.on('data', feed(err));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    out,
    err,
    exited,
    waitFor(pattern, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = out.find((l) => pattern.test(l));
          if (hit !== undefined) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(hit);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out waiting for ${pattern}; stdout: ${out.join('\n')}; stderr: ${err.join('\n')}`,
            ),
          );
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

async function tempConfig(text: string): Promise<{ path: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'og-cli-'));
  const path = join(dir, 'origins.yaml');
  await writeFile(path, text);
  return { path, dir };
}

/** Replaces the file the way editors and ConfigMap updates do: write aside, rename over. */
async function replaceFile(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

interface Standalone {
  readonly p: Proc;
  readonly listen: number;
  readonly admin: number;
  readonly path: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A sidecar process serving one Origin to `upstreamPort`, ready to take requests. */
async function standalone(upstreamPort: number, extraArgs: string[] = []): Promise<Standalone> {
  const listen = await freePort();
  const admin = await freePort();
  const { path, dir } = await tempConfig(originYaml(listen, upstreamPort));
  const args = ['sidecar', '--config', path, '--admin-port', String(admin), '--admin-address', '127.0.0.1'];
  const p = run([...args, ...extraArgs]);
  await p.waitFor(/sidecar ready/);
  return { p, listen, admin, path, [Symbol.asyncDispose]: () => rm(dir, { recursive: true }) };
}

describe('originguard sidecar (process)', () => {
  it('refuses an invalid file at start, naming each bad field, with a non-zero exit', async () => {
    const { path, dir } = await tempConfig(
      originYaml(8080, 70000, '  timeouts: {connect: soon}\n  bogus: 1\n'),
    );
    try {
      const p = run(['sidecar', '--config', path, '--admin-port', '0']);
      expect(await p.exited).toBe(1);
      const stderr = p.err.join('\n');
      expect(stderr).toContain('spec.upstream.port: must be 1-65535, got 70000');
      expect(stderr).toContain(
        'spec.timeouts.connect: must be a duration such as 250ms, 5s or 1m30s, got "soon"',
      );
      expect(stderr).toContain('spec.bogus: unknown field');
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('prints usage for --help and refuses unknown flags', async () => {
    const help = run(['sidecar', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.out.join('\n')).toContain('--admin-port');
    const bad = run(['sidecar', '--nope']);
    expect(await bad.exited).toBe(2);
    expect(bad.err.join('\n')).toContain("Unknown option '--nope'");
  });

  it('in cluster mode, exits 2 naming the first variable the webhook should have set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'og-pod-'));
    try {
      const full: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        ...podEnv({ podName: 'p', namespace: 'ns', podUid: 'u', serviceAccount: 'default', dir }, 6443),
      };
      for (const name of [
        SIDECAR_ENV.podName,
        SIDECAR_ENV.podUid,
        SIDECAR_ENV.tokenFile,
        'KUBERNETES_SERVICE_HOST',
      ]) {
        const p = run(['sidecar', '--cluster', '--admin-port', '0'], { ...full, [name]: undefined });
        expect(await p.exited, name).toBe(2);
        expect(p.err.join('\n')).toContain(`${name} is not set`);
      }
      // Every variable set, but the files of the projected volume are not there.
      const noFiles = run(['sidecar', '--cluster', '--admin-port', '0'], full);
      expect(await noFiles.exited).toBe(1);
      expect(noFiles.err.join('\n')).toContain(`cannot read the cluster CA ${join(dir, 'ca.crt')}`);
      await writeFile(join(dir, 'token'), 'token');
      await writeFile(join(dir, 'ca.crt'), 'not a certificate');
      const noLabels = run(['sidecar', '--cluster', '--admin-port', '0'], full);
      expect(await noLabels.exited).toBe(1);
      expect(noLabels.err.join('\n')).toContain(`cannot read the pod's labels from ${join(dir, 'labels')}`);
      const both = run(['sidecar', '--cluster', '--config', 'x.yaml'], full);
      expect(await both.exited).toBe(2);
      expect(both.err.join('\n')).toContain('give either --config <file> or --cluster');
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('applies a valid change of the file live, without dropping a request in flight', async () => {
    await using a = await startHttpOrigin();
    await using b = await startHttpOrigin();
    await using sc = await standalone(a.port);
    const inFlight = get(`http://127.0.0.1:${sc.listen}/slow?delay=800`);
    await new Promise((r) => setTimeout(r, 100));
    await replaceFile(sc.path, originYaml(sc.listen, b.port));
    await sc.p.waitFor(/configuration change applied/);
    const after = JSON.parse((await get(`http://127.0.0.1:${sc.listen}/after`)).body) as EchoResponse;
    expect(after.url).toBe('/after');
    expect(b.requests.map((r) => r.url)).toContain('/after');
    expect((await inFlight).status).toBe(200);
    expect(a.requests.map((r) => r.url)).toContain('/slow?delay=800');
  });

  it('refuses an invalid change with the same messages and keeps serving the last good configuration', async () => {
    await using a = await startHttpOrigin();
    await using sc = await standalone(a.port);
    await replaceFile(sc.path, originYaml(sc.listen, 70000));
    const refused = await sc.p.waitFor(/configuration change refused/);
    expect(refused).toContain('spec.upstream.port: must be 1-65535, got 70000');
    expect((await get(`http://127.0.0.1:${sc.listen}/still`)).status).toBe(200);
    const status = JSON.parse((await get(`http://127.0.0.1:${sc.admin}/status`)).body) as {
      configErrors: string[];
    };
    expect(status.configErrors.join()).toContain('spec.upstream.port');
    const metrics = (await get(`http://127.0.0.1:${sc.admin}/metrics`)).body;
    expect(metrics).toContain('originguard_config_reloads_total{result="rejected"} 1');
  });

  it('on SIGTERM stops accepting, finishes the request in flight, and exits 0', async () => {
    await using a = await startHttpOrigin();
    await using sc = await standalone(a.port, ['--drain-timeout', '5s']);
    expect((await get(`http://127.0.0.1:${sc.admin}/readyz`)).status).toBe(200);
    const inFlight = get(`http://127.0.0.1:${sc.listen}/slow?delay=700`);
    await new Promise((r) => setTimeout(r, 150));
    sc.p.child.kill('SIGTERM');
    await sc.p.waitFor(/draining/);
    await expect(request(`http://127.0.0.1:${sc.listen}/new`, { reset: true })).rejects.toThrow();
    expect((await inFlight).status).toBe(200);
    expect(await sc.p.exited).toBe(0);
  });

  it('streams 512 MiB through while its memory grows by far less than the body (no whole-body buffering)', async () => {
    await using a = await startHttpOrigin();
    const listen = await freePort();
    const { path, dir } = await tempConfig(originYaml(listen, a.port));
    try {
      const p = run(['sidecar', '--config', path, '--admin-port', '0', '--log-level', 'warn']);
      for (let i = 0; i < 100; i++) {
        try {
          await get(`http://127.0.0.1:${listen}/ping`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const kb = async (field: string) =>
        Number(
          new RegExp(`${field}:\\s+(\\d+)`).exec(await readFile(`/proc/${p.child.pid}/status`, 'utf8'))?.[1],
        );
      const before = await kb('VmRSS');
      const size = 512 * 1024 * 1024;
      const r = await request(`http://127.0.0.1:${listen}/bytes/${size}`);
      let n = 0;
      for await (const chunk of r.body) n += (chunk as Buffer).length;
      expect(n).toBe(size);
      // Buffering would grow it by 512 MiB; streaming costs only GC slack.
      expect(((await kb('VmHWM')) - before) * 1024).toBeLessThan(160 * 1024 * 1024);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
