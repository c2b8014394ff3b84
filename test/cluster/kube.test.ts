// The thin Kubernetes layer against the real API server: the informer keeps its
// cache right through a watch that stalls silently (a proxy freezes it
// mid-stream) and through a broken connection; leader election hands the Lease
// over when the leader stops, at once when it releases it and within the lease
// duration when it just disappears.

import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubeClient } from '../../src/kube/client.ts';
import { Informer } from '../../src/kube/informer.ts';
import { loadKubeConfig } from '../../src/kube/kubeconfig.ts';
import { LeaderElector } from '../../src/kube/leader-election.ts';
import { kubeconfigPath, kubectlOk, useNamespace, waitFor } from './fixtures.ts';

const logger = pino({ level: process.env.ORIGINGUARD_TEST_LOG ?? 'silent' });

/** A TCP proxy to the API server whose open connections can be frozen (bytes stop, sockets stay open) or cut. */
class FreezableProxy {
  private readonly pairs: [Socket, Socket][] = [];
  private readonly server: Server = createServer((client) => this.forward(client));
  private target: URL | undefined;
  port = 0;

  async start(target: URL): Promise<void> {
    this.target = target;
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  private readonly frozen: [Socket, Socket][] = [];

  private forward(client: Socket): void {
    const target = this.target as URL;
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const swallow = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', swallow);
    upstream.on('error', swallow);
    this.pairs.push([client, upstream]);
  }

  /** Stops every open connection from passing bytes, without closing it: a silent stall. */
  freeze(): number {
    const n = this.pairs.length;
    for (const [a, b] of this.pairs.splice(0)) {
      a.unpipe();
      b.unpipe();
      a.pause();
      b.pause();
      this.frozen.push([a, b]);
    }
    return n;
  }

  /** Resets every open connection. */
  cut(): void {
    for (const [a, b] of this.pairs.splice(0)) {
      a.resetAndDestroy();
      b.destroy();
    }
  }

  async stop(): Promise<void> {
    for (const [a, b] of [...this.pairs.splice(0), ...this.frozen.splice(0)]) {
      a.destroy();
      b.destroy();
    }
    await new Promise((r) => this.server.close(r));
  }
}

async function clientThrough(port?: number): Promise<KubeClient> {
  if (port === undefined) return new KubeClient(await loadKubeConfig({ kubeconfig: kubeconfigPath() }));
  const config = parse(readFileSync(kubeconfigPath(), 'utf8')) as {
    clusters: { cluster: { server: string } }[];
  };
  for (const c of config.clusters) c.cluster.server = c.cluster.server.replace(/:\d+$/, `:${port}`);
  const file = join(tmpdir(), `og-proxy-kubeconfig-${port}.yaml`);
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return new KubeClient(await loadKubeConfig({ kubeconfig: file }));
}

type ConfigMap = {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
};

describe('informer', () => {
  const ns = useNamespace('informer');
  const proxy = new FreezableProxy();

  beforeAll(async () => {
    await proxy.start(new URL((await clientThrough()).server));
  });
  afterAll(() => proxy.stop());

  async function configMapInformer(namespace: string, restarts: string[]) {
    return new Informer<ConfigMap>(await clientThrough(proxy.port), {
      name: 'configmaps',
      paths: [`/api/v1/namespaces/${namespace}/configmaps`],
      stallTimeoutMs: 1500,
      logger,
      onRestart: (reason) => restarts.push(reason),
    });
  }

  /** Waits until the informer's watch is live: it sees an object created after the list. */
  async function watching(informer: Informer<ConfigMap>, name: string): Promise<void> {
    await kubectlOk(['create', 'configmap', name], { namespace: ns() });
    await waitFor(async () => informer.get(`${ns()}/${name}`) !== undefined, {
      timeoutMs: 10_000,
      what: `the watch to deliver ${name}`,
    });
  }

  it('lists, then delivers adds, updates and deletes from the watch', async () => {
    await kubectlOk(['create', 'configmap', 'first', '--from-literal=a=1'], { namespace: ns() });
    const seen: string[] = [];
    const informer = await configMapInformer(ns(), []);
    informer.on('add', (o) => seen.push(`add ${o.metadata.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata.name}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata.name}`));
    informer.start();
    try {
      await informer.waitForSync();
      expect(informer.get(`${ns()}/first`)?.data).toEqual({ a: '1' });
      await kubectlOk(['create', 'configmap', 'second'], { namespace: ns() });
      await kubectlOk(['patch', 'configmap', 'first', '-p', '{"data":{"a":"2"}}'], { namespace: ns() });
      await kubectlOk(['delete', 'configmap', 'second'], { namespace: ns() });
      await waitFor(async () => seen.includes('delete second'), {
        timeoutMs: 10_000,
        what: 'the delete event',
      });
      expect(seen.filter((s) => !s.includes('kube-root-ca'))).toEqual([
        'add first',
        'add second',
        'update first',
        'delete second',
      ]);
      expect(informer.get(`${ns()}/first`)?.data).toEqual({ a: '2' });
    } finally {
      await informer.stop();
    }
  });

  it('restarts a watch that stalls silently and catches up on what it missed', async () => {
    const restarts: string[] = [];
    const informer = await configMapInformer(ns(), restarts);
    informer.start();
    try {
      await informer.waitForSync();
      await watching(informer, 'before-stall');
      // The watch connection stays open but passes nothing: without a watchdog the cache would never change again.
      expect(proxy.freeze()).toBeGreaterThan(0);
      await kubectlOk(['create', 'configmap', 'during-stall'], { namespace: ns() });
      await waitFor(async () => informer.get(`${ns()}/during-stall`) !== undefined, {
        timeoutMs: 15_000,
        what: 'the informer to see an object created while its watch was frozen',
      });
      expect(restarts).toContain('stall');
    } finally {
      await informer.stop();
    }
  });

  it('reconnects after the connection is reset and keeps the cache right', async () => {
    const restarts: string[] = [];
    const informer = await configMapInformer(ns(), restarts);
    informer.start();
    try {
      await informer.waitForSync();
      await watching(informer, 'before-reset');
      proxy.cut();
      await kubectlOk(['create', 'configmap', 'after-reset'], { namespace: ns() });
      await waitFor(async () => informer.get(`${ns()}/after-reset`) !== undefined, {
        timeoutMs: 15_000,
        what: 'the informer to see an object created after its connection was reset',
      });
      expect(restarts.some((r) => r === 'error' || r === 'closed')).toBe(true);
    } finally {
      await informer.stop();
    }
  });
});

describe('informer over many objects and namespaces', () => {
  const a = useNamespace('inf-a');
  const b = useNamespace('inf-b');
  const path = (ns: string) => `/api/v1/namespaces/${ns}/configmaps`;

  async function configMaps(ns: string, count: number): Promise<void> {
    const items = Array.from({ length: count }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `cm-${i}`, namespace: ns, labels: { informer: 'paged' } },
      data: { i: String(i), padding: 'x'.repeat(100) },
    }));
    await kubectlOk(['create', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    });
  }

  async function pagedInformer(paths: string[]) {
    return new Informer<ConfigMap>(await clientThrough(), {
      name: 'configmaps',
      paths,
      labelSelector: 'informer=paged',
      pageSize: 2,
      // Keep what a caller reads; drop the rest (here: the padding).
      transform: (o) => ({ metadata: o.metadata, data: { i: o.data?.i ?? '' } }),
      logger,
    });
  }

  it('lists page by page into the cache, keeps only what transform keeps, and lists a namespace from its index', async () => {
    await configMaps(a(), 7);
    await configMaps(b(), 3);
    const informer = await pagedInformer([path(a()), path(b())]);
    informer.start();
    try {
      await informer.waitForSync();
      expect(informer.size).toBe(10);
      expect(
        informer
          .list(a())
          .map((o) => o.data?.i)
          .sort(),
      ).toEqual(['0', '1', '2', '3', '4', '5', '6']);
      expect(informer.list(b())).toHaveLength(3);
      expect(informer.list()).toHaveLength(10);
      expect(informer.namespaces().sort()).toEqual([a(), b()].sort());
      const cached = informer.get(`${a()}/cm-6`);
      expect(cached?.data).toEqual({ i: '6' });
      expect(cached?.metadata).not.toHaveProperty('managedFields');
    } finally {
      await informer.stop();
    }
  });

  it('follows namespaces as they are added and dropped: lists the new one, forgets the old one with deletes', async () => {
    await configMaps(a(), 3);
    await configMaps(b(), 4);
    const informer = await pagedInformer([path(a())]);
    const deleted: string[] = [];
    const synced: string[] = [];
    informer.on('delete', (o) => deleted.push(`${o.metadata.namespace}/${o.metadata.name}`));
    informer.on('pathSynced', (p) => synced.push(p));
    informer.start();
    try {
      await informer.waitForSync();
      expect(informer.size).toBe(3);
      informer.setPaths([path(a()), path(b())]);
      expect(informer.synced).toBe(false);
      expect(informer.hasSynced(path(b()))).toBe(false);
      await informer.waitForSync();
      expect(synced).toEqual([path(a()), path(b())]);
      expect(informer.size).toBe(7);
      informer.setPaths([path(b())]);
      expect(informer.size).toBe(4);
      expect(informer.list(a())).toEqual([]);
      expect(deleted.sort()).toEqual([`${a()}/cm-0`, `${a()}/cm-1`, `${a()}/cm-2`]);
      // The dropped namespace's watch is gone: its changes no longer reach the cache.
      await kubectlOk(['label', 'configmap', 'cm-0', 'more=1'], { namespace: a() });
      await kubectlOk(['label', 'configmap', 'cm-0', 'more=1'], { namespace: b() });
      await waitFor(async () => informer.get(`${b()}/cm-0`)?.metadata.labels?.more === '1', {
        timeoutMs: 10_000,
        what: 'the watched namespace to deliver its update',
      });
      expect(informer.size).toBe(4);
    } finally {
      await informer.stop();
    }
  });
});

describe('leader election', () => {
  const ns = useNamespace('lease');

  async function elector(name: string, log: string[], leaseDurationMs = 3000) {
    return new LeaderElector(await clientThrough(), {
      namespace: ns(),
      name: 'test-lease',
      identity: name,
      leaseDurationMs,
      renewDeadlineMs: 2000,
      retryPeriodMs: 300,
      logger,
      onStartedLeading: () => log.push(`${name} leads`),
      onStoppedLeading: () => log.push(`${name} stops`),
    });
  }

  async function holder(): Promise<string> {
    return (
      await kubectlOk(['get', 'lease', 'test-lease', '-o', 'jsonpath={.spec.holderIdentity}'], {
        namespace: ns(),
      })
    ).trim();
  }

  it('elects exactly one leader and hands over at once when it releases the lease', async () => {
    const log: string[] = [];
    // A 10 s lease: a hand-over well before it lapses can only be the release.
    const a = await elector('a', log, 10_000);
    const b = await elector('b', log, 10_000);
    a.start();
    await waitFor(async () => a.isLeader, { timeoutMs: 5000, what: 'a to lead' });
    b.start();
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.isLeader).toBe(false);
    expect(await holder()).toBe(a.identity);
    const t0 = Date.now();
    await a.stop();
    await waitFor(async () => b.isLeader, { timeoutMs: 5000, what: 'b to take over' });
    // Released, not expired: b takes it within a retry period or two (slack for a
    // loaded machine), far before the 10 s lease would lapse.
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await holder()).toBe(b.identity);
    expect(log).toEqual(['a leads', 'a stops', 'b leads']);
    await b.stop();
  });

  it('takes over within the lease duration when the leader vanishes without releasing', async () => {
    const log: string[] = [];
    const a = await elector('a', log);
    const b = await elector('b', log);
    a.start();
    await waitFor(async () => a.isLeader, { timeoutMs: 5000, what: 'a to lead' });
    b.start();
    // A crash: a stops renewing but never releases the lease.
    await a.stop(false);
    const t0 = Date.now();
    await waitFor(async () => b.isLeader, { timeoutMs: 10_000, intervalMs: 100, what: 'b to take over' });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThan(1500);
    expect(took).toBeLessThan(3000 + 2 * 300 + 1000);
    expect(await holder()).toBe(b.identity);
    await b.stop();
  });
});
