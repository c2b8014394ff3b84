// The artifact as users get it, not the checkout: `npm pack` (which runs
// `prepare` → the esbuild bundle) of a copy of the project, the tarball
// installed with production dependencies only, and the installed `originguard`
// started from there. Then the container image's layout (bin/, dist/ and
// package.json with no node_modules at all, see Dockerfile) run the same way,
// with V8's compile cache pointed at a directory that cannot be created, as
// under a read-only root filesystem. Proves that the production dependency set
// is complete and that the bundle needs nothing else.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort, get } from '../support/run-sidecar.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;
// npm and the installed bin's `#!/usr/bin/env node` must find this Node (24), not the system's.
const env = {
  ...process.env,
  PATH: `${dirname(process.execPath)}:${join(repo, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

let work = '';
let tarball = '';
let packedFiles: string[] = [];
/** The installed CLI, as npm links it: node_modules/.bin/originguard. */
let installedBin = '';
/** The image layout: /app/bin/originguard.js with dist/ and package.json, no node_modules. */
let imageBin = '';

const children = new Set<ChildProcess>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'originguard-pack-'));
  // A copy of what `npm pack` and `prepare` read, so packing never rebuilds the
  // checkout's dist/ under other tests' feet; node_modules (for esbuild) is linked.
  const project = join(work, 'project');
  await mkdir(join(project, 'hack'), { recursive: true });
  for (const entry of [
    'package.json',
    'package-lock.json',
    'README.md',
    'tsconfig.json',
    'bin',
    'src',
    'crds',
    'examples',
  ])
    await cp(join(repo, entry), join(project, entry), { recursive: true });
  await cp(join(repo, 'hack/build.ts'), join(project, 'hack/build.ts'));
  await symlink(join(repo, 'node_modules'), join(project, 'node_modules'), 'dir');

  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: project, env });
  // prepare's build prints a line before npm's JSON.
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(work, info?.filename ?? '');
  packedFiles = (info?.files ?? []).map((f) => f.path);

  const consumer = join(work, 'consumer');
  await mkdir(consumer);
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: consumer,
    env,
  });
  installedBin = join(consumer, 'node_modules/.bin/originguard');

  const image = join(work, 'image');
  await mkdir(image);
  for (const entry of ['package.json', 'bin', 'dist'])
    await cp(join(project, entry), join(image, entry), { recursive: true });
  imageBin = join(image, 'bin/originguard.js');
}, 55_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/** An example from the installed package, moved to free ports (listen, admin) and a closed upstream port. */
async function exampleOnFreePorts(): Promise<{ file: string; listen: number; upstream: number }> {
  const listen = await freePort();
  const upstream = await freePort();
  const example = await readFile(
    join(work, 'consumer/node_modules/originguard/examples/standalone.yaml'),
    'utf8',
  );
  const moved = example.replace(/port: 8080/, `port: ${listen}`).replace(/port: 8081/, `port: ${upstream}`);
  expect(parse(moved).spec).toMatchObject({ listen: { port: listen }, upstream: { port: upstream } });
  const file = join(work, `example-${listen}.yaml`);
  await writeFile(file, moved);
  return { file, listen, upstream };
}

/** Starts the sidecar from `bin`, waits for /readyz, proxies one request, then SIGTERM → exit 0. */
async function sidecarStartsAndStops(bin: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  const { file, listen } = await exampleOnFreePorts();
  const admin = await freePort();
  const child = spawn(
    bin,
    ['sidecar', '--config', file, '--admin-port', String(admin), '--admin-address', '127.0.0.1'],
    {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const deadline = Date.now() + 10_000;
  let ready = false;
  while (!ready && Date.now() < deadline && child.exitCode === null) {
    ready = await get(`http://127.0.0.1:${admin}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  expect(ready, `sidecar never became ready:\n${output}`).toBe(true);

  // Nothing listens on the upstream port: the bundle classifies it like the checkout does.
  const answer = await get(`http://127.0.0.1:${listen}/`);
  expect(answer.status).toBe(531);
  expect(answer.headers['proxy-status']).toContain('error=connection_refused');

  child.kill('SIGTERM');
  expect(await exited, output).toBe(0);
  children.delete(child);
}

describe('npm pack and a production-only install', () => {
  it('packs the bundle built by prepare, the bin, the CRDs and the examples, and no sources or tests', () => {
    expect(packedFiles).toContain('dist/originguard.mjs');
    expect(packedFiles.some((f) => f.startsWith('dist/chunks/'))).toBe(true);
    expect(packedFiles).toContain('bin/originguard.js');
    expect(packedFiles).toContain('bin/kubectl-originguard.js');
    expect(packedFiles).toContain('crds/origins.edge.originguard.dev.yaml');
    expect(packedFiles).toContain('examples/standalone.yaml');
    expect(packedFiles.filter((f) => /^(src|test|hack|bench)\//.test(f))).toEqual([]);
  });

  it.each([
    [[], /Commands:/],
    [['operator', '--help'], /originguard operator/],
    [['sidecar', '--help'], /originguard sidecar --config <file>/],
    [['diagnose', '--help'], /originguard diagnose TARGET/],
    [['status', '--help'], /originguard status \[origin\/NAME\]/],
  ])('the installed originguard %j prints its help and exits 0', async (args, pattern) => {
    const { stdout } = await run(installedBin, [...args, ...(args.length === 0 ? ['--help'] : [])], { env });
    expect(stdout).toMatch(pattern);
  });

  it('installs kubectl-originguard, the kubectl plugin, which diagnoses with the bundle', async () => {
    const plugin = join(work, 'consumer/node_modules/.bin/kubectl-originguard');
    expect((await run(plugin, ['--help'], { env })).stdout).toContain('Usage: kubectl originguard <command>');
    const port = await freePort();
    const refused = await run(plugin, ['diagnose', `127.0.0.1:${port}`, '-o', 'json'], { env }).catch(
      (err: { code: number; stdout: string }) => err,
    );
    expect('code' in refused ? refused.code : 0).toBe(81);
    expect(JSON.parse(refused.stdout).verdict.cause).toBe('connection_refused');
  });

  it('the installed sidecar starts on an example, becomes ready, answers 531 and exits 0 on SIGTERM', async () => {
    await sidecarStartsAndStops(installedBin);
  }, 20_000);
});

describe('the container image layout: bin/, dist/ and package.json, no node_modules', () => {
  it('prints the help of both subcommands', async () => {
    for (const sub of ['operator', 'sidecar'])
      expect((await run(imageBin, [sub, '--help'], { env })).stdout).toMatch(
        new RegExp(`originguard ${sub}`),
      );
  });

  it('runs the sidecar with a compile cache directory that cannot be created (read-only root filesystem)', async () => {
    // mkdir fails there (ENOTDIR: a file is in the way), as it fails with EROFS on a
    // read-only root filesystem; root ignores permission bits, so a file it is.
    await sidecarStartsAndStops(imageBin, { NODE_COMPILE_CACHE: join(imageBin, 'compile-cache') });
  }, 20_000);
});
