// List+watch cache of one resource, hardened against the ways Node Kubernetes
// watches fail in practice: a watch that errors is restarted with backoff; a
// watch that silently stalls (no event, no bookmark) is cut by an inactivity
// timer; 410 Gone relists; and a periodic relist diffs against the cache so a
// missed event is repaired within one period. Handlers see add/update/delete.
// Why not @kubernetes/client-node's ListWatch (2.0.1, read in its dist/): it stops
// for good on any error other than 410 Gone and its own Watch timeout, leaving the
// cache stale with only an error callback; and that timeout (30 s, reset on each
// chunk) is shorter than the API server's bookmark interval (~1 min), so a quiet
// resource's watch is cut and reopened about every 30 s. Ours waits 90 s.
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { type BackoffPolicy, backoffDelay, sleep } from '../retry.ts';
import type { KubeClient } from './client.ts';
import { KubeApiError } from './errors.ts';
import { type KubeObject, objectKey } from './objects.ts';

export interface InformerOptions {
  /** For logs and metrics, e.g. "origins". */
  name: string;
  /** Collection paths to list and watch (one per namespace, or one cluster-wide). */
  paths: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Full relist that repairs any missed event (default 10 min). */
  relistIntervalMs?: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is restarted (default 90 s). */
  stallTimeoutMs?: number;
  logger: Logger;
  /** Called on each restart of a watch, with why (for metrics). */
  onRestart?: (reason: 'error' | 'stall' | 'expired' | 'closed' | 'relist') => void;
  /** Called when a list or watch request got through (true) or failed (false, with the error). */
  onApiResult?: (ok: boolean, err?: unknown) => void;
}

const BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };
/** ±20 %, so informers started together do not relist together. */
const jitter = (ms: number) => ms * (0.8 + Math.random() * 0.4);

interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T & { code?: number; message?: string };
}

export class Informer<T extends KubeObject> extends EventEmitter<{
  add: [T];
  update: [T, T];
  delete: [T];
  synced: [];
}> {
  private readonly cache = new Map<string, T>();
  private readonly syncedPaths = new Set<string>();
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly opts: Required<
    Omit<InformerOptions, 'labelSelector' | 'fieldSelector' | 'onRestart' | 'onApiResult'>
  > &
    InformerOptions;

  private readonly client: KubeClient;

  constructor(client: KubeClient, opts: InformerOptions) {
    super();
    this.client = client;
    this.opts = { relistIntervalMs: 600_000, stallTimeoutMs: 90_000, ...opts };
  }

  get synced(): boolean {
    return this.syncedPaths.size === this.opts.paths.length;
  }

  start(): void {
    for (const path of this.opts.paths) this.loops.push(this.run(path));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
  }

  /** Resolves once every path was listed once. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.once('synced', resolve));
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  private async run(path: string): Promise<void> {
    const signal = this.abort.signal;
    let failures = 0;
    let resourceVersion: string | undefined;
    let relistAt = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined || Date.now() >= relistAt) {
          resourceVersion = await this.relist(path);
          relistAt = Date.now() + jitter(this.opts.relistIntervalMs);
        }
        const started = Date.now();
        const outcome = await this.watch(path, resourceVersion, relistAt - Date.now());
        resourceVersion = outcome.resourceVersion;
        if (outcome.reason === 'expired') resourceVersion = undefined;
        if (signal.aborted) break;
        this.opts.onRestart?.(outcome.reason);
        // A watch the server closes at once, again and again, must not spin.
        failures = outcome.reason === 'closed' && Date.now() - started < 1000 ? failures + 1 : 0;
        if (failures > 0) await sleep(backoffDelay(failures + 1, BACKOFF), signal);
      } catch (err) {
        if (signal.aborted) break;
        this.opts.onApiResult?.(false, err);
        failures++;
        const delay = backoffDelay(failures, BACKOFF);
        this.opts.logger.warn(
          { informer: this.opts.name, path, err: (err as Error).message, retryInMs: Math.round(delay) },
          'list/watch failed; retrying',
        );
        this.opts.onRestart?.('error');
        await sleep(delay, signal);
      }
    }
  }

  /** Lists `path` and reconciles the cache's objects of that path with the result. */
  private async relist(path: string): Promise<string> {
    const query = { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
    const { items, resourceVersion } = await this.client.list<T>(path, query);
    this.opts.onApiResult?.(true);
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      this.upsert(key, item);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key) && this.pathOf(old) === path) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    if (!this.syncedPaths.has(path)) {
      this.syncedPaths.add(path);
      if (this.synced) this.emit('synced');
    }
    return resourceVersion;
  }

  /** Which of our paths an object belongs to (paths are per namespace or cluster-wide). */
  private pathOf(o: KubeObject): string | undefined {
    if (this.opts.paths.length === 1) return this.opts.paths[0];
    return this.opts.paths.find((p) => p.includes(`/namespaces/${o.metadata.namespace}/`));
  }

  private upsert(key: string, item: T): void {
    const old = this.cache.get(key);
    this.cache.set(key, item);
    if (old === undefined) this.emit('add', item);
    else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('update', item, old);
  }

  /** One watch request, until the server ends it, it stalls, it fails, or the relist is due. */
  private async watch(
    path: string,
    resourceVersion: string,
    untilRelistMs: number,
  ): Promise<{ resourceVersion: string; reason: 'closed' | 'stall' | 'expired' | 'relist' }> {
    const local = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, local.signal]);
    let reason = 'closed' as 'closed' | 'stall' | 'expired' | 'relist';
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        reason = 'stall';
        local.abort();
      }, this.opts.stallTimeoutMs);
    };
    const relistTimer = setTimeout(
      () => {
        reason = 'relist';
        local.abort();
      },
      Math.max(0, untilRelistMs),
    );
    let rv = resourceVersion;
    const connection = this.client.newConnection();
    try {
      armStall();
      const res = await this.client.send('GET', path, {
        dispatcher: connection,
        query: {
          watch: true,
          resourceVersion,
          allowWatchBookmarks: true,
          // The server ends the watch after this; we then resume from the last resourceVersion.
          timeoutSeconds: 300 + Math.floor(Math.random() * 300),
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        timeoutMs: 0,
        signal,
      });
      this.opts.onApiResult?.(true);
      const lines = createInterface({ input: res.body, crlfDelay: Number.POSITIVE_INFINITY });
      // readline re-emits the body's error on the interface; unheard, it would crash the
      // process when the API server goes away. The loop then ends and the watch restarts.
      lines.on('error', () => {});
      for await (const line of lines) {
        armStall();
        if (line === '') continue;
        const event = JSON.parse(line) as WatchEvent<T>;
        if (event.type === 'ERROR') {
          if (event.object.code === 410) {
            reason = 'expired';
            break;
          }
          throw new KubeApiError(
            'WATCH',
            path,
            event.object.code ?? 500,
            'WatchError',
            event.object.message ?? 'watch error',
          );
        }
        rv = event.object.metadata.resourceVersion ?? rv;
        this.apply(event);
      }
    } catch (err) {
      // Our own aborts end the watch normally; anything else is a failure to retry.
      if (!signal.aborted) throw err;
    } finally {
      clearTimeout(stallTimer);
      clearTimeout(relistTimer);
      local.abort();
      // Never reuse the watch's connection: if it went silent, the next watch must not inherit it.
      void connection.destroy().catch(() => {});
    }
    if (reason === 'stall') {
      this.opts.logger.warn({ informer: this.opts.name, path }, 'watch stalled; restarting it');
    }
    return { resourceVersion: rv, reason };
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(event.object);
    if (event.type === 'DELETED') {
      const old = this.cache.get(key);
      this.cache.delete(key);
      this.emit('delete', old ?? event.object);
      return;
    }
    this.upsert(key, event.object);
  }
}
