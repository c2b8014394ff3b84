// The container image built from the Dockerfile, run as a pod runs it: read-only
// root with only /tmp writable, uid 65532, no capabilities, no new privileges.
// The sidecar on a mounted Origin file proxies to a live origin on loopback and
// answers 531 with its cause for a dead one; SIGTERM to PID 1 drains a request in
// flight and exits 0; the container wrote nothing outside /tmp; the image holds
// no npm, no sources and no node_modules. Skipped, saying why, where Podman
// cannot run (npm run image installs it; CI does).
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { type Container, IMAGE, imagePaths, imageUnavailable, startContainer } from '../support/image.ts';
import { closedPort, type HttpOriginHandle, startHttpOrigin } from '../support/origins.ts';
import { freePort, get, manifest } from '../support/run-sidecar.ts';

const unavailable = await imageUnavailable();
if (unavailable !== undefined) console.warn(`[image] skipping the image tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)(`image ${IMAGE}: the sidecar as a pod runs it`, () => {
  let dir = '';
  let live: HttpOriginHandle;
  let livePort = 0;
  let deadPort = 0;
  let admin = 0;
  let dead = 0;
  let sidecar: Container;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'og-image-'));
    live = await startHttpOrigin();
    dead = await closedPort();
    livePort = await freePort();
    deadPort = await freePort();
    admin = await freePort();
    // Two Origins in one file, as a ConfigMap would mount it.
    const origins = [
      manifest('live', livePort, { upstream: { host: '127.0.0.1', port: live.port } }),
      manifest('dead', deadPort, { upstream: { host: '127.0.0.1', port: dead } }),
    ];
    const file = join(dir, 'origins.yaml');
    await writeFile(file, origins.map((o) => stringify(o)).join('---\n'));
    // uid 65532 reads it through the read-only mount.
    await chmod(dir, 0o755);
    await chmod(file, 0o644);
    sidecar = startContainer(
      ['sidecar', '--config=/config/origins.yaml', `--admin-port=${admin}`, '--admin-address=127.0.0.1'],
      { [dir]: '/config' },
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await get(`http://127.0.0.1:${admin}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline)
        throw new Error(`the sidecar container never became ready:\n${sidecar.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);

  afterAll(async () => {
    await sidecar?.remove();
    await live?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('proxies to the live origin', async () => {
    const answer = await get(`http://127.0.0.1:${livePort}/products?id=1`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'GET', url: '/products?id=1' });
    expect(live.requests.at(-1)?.headers.via).toMatch(/originguard/);
  });

  it('answers 531 with cause connection_refused for the dead origin, and logs it', async () => {
    const answer = await get(`http://127.0.0.1:${deadPort}/`);
    expect(answer.status).toBe(531);
    expect(answer.headers['proxy-status']).toMatch(/^originguard; error=connection_refused/);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 531, cause: 'connection_refused' });
    await vi.waitFor(() =>
      expect(sidecar.logs).toContainEqual(
        expect.objectContaining({ msg: 'upstream connection_refused', origin: 'test/dead', status: 531 }),
      ),
    );
    const metrics = await get(`http://127.0.0.1:${admin}/metrics`);
    expect(metrics.body).toMatch(
      /originguard_upstream_failures_total\{origin="test\/dead",cause="connection_refused",phase="connect"\} [1-9]/,
    );
  });

  it('logs its start-to-ready time inside the container', () => {
    const ready = sidecar.logs.find((l) => l.msg === 'sidecar ready');
    expect(ready?.sinceProcessStartMs, sidecar.tail()).toBeGreaterThan(0);
    console.warn(`[image] sidecar ready ${String(ready?.sinceProcessStartMs)} ms after its process started`);
  });

  it('on SIGTERM to PID 1, finishes the request in flight, then exits 0 within the grace period', async () => {
    const inFlight = get(`http://127.0.0.1:${livePort}/slow?delay=700`);
    await new Promise((r) => setTimeout(r, 200));
    const sent = Date.now();
    await sidecar.signal('SIGTERM');
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(await sidecar.exited, sidecar.tail()).toBe(0);
    // Kubernetes' default terminationGracePeriodSeconds is 30.
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(sidecar.logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['draining: not accepting new connections', 'drained; exiting']),
    );
  }, 20_000);

  it('wrote nothing outside /tmp: the container filesystem differs from the image only by its mount points', async () => {
    // /config is the volume's mount point; /etc holds the hosts, hostname and resolv.conf
    // files the runtime mounts. The process itself could write nowhere but /tmp (a tmpfs).
    expect((await sidecar.diff()).sort()).toEqual(['A /config', 'C /etc']);
  });
});

describe.skipIf(unavailable !== undefined)(`image ${IMAGE}: contents`, () => {
  let paths: string[] = [];
  beforeAll(async () => {
    paths = await imagePaths();
  }, 60_000);

  it('holds the bundle and the entrypoint', () => {
    expect(paths).toEqual(
      expect.arrayContaining(['app/bin/originguard.js', 'app/dist/originguard.mjs', 'app/package.json']),
    );
    expect(paths).toContain('usr/local/bin/node');
  });

  it('holds no npm, no TypeScript sources, no node_modules and no source maps', () => {
    expect(paths.filter((p) => /(^|\/)(npm|npx|corepack)(\/|$)/.test(p))).toEqual([]);
    expect(paths.filter((p) => /node_modules\/./.test(p))).toEqual([]);
    expect(paths.filter((p) => p.startsWith('app/') && /\.(ts|map)$/.test(p))).toEqual([]);
    expect(paths.filter((p) => /^app\/(src|test|hack|node_modules)\//.test(p))).toEqual([]);
  });
});
