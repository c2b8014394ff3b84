// List+watch cache of one resource, hardened against the ways Node Kubernetes
// watches fail in practice: a watch that errors is restarted with backoff; a
// watch that silently stalls (no event, no bookmark) is cut by an inactivity
// timer; 410 Gone relists; and a periodic relist diffs against the cache so a
// missed event is repaired within one period. Handlers see add/update/delete.
// Built for large collections: only what `transform` keeps is cached (never
// managedFields), a relist is applied page by page with a bounded number of pages
// in flight, objects are indexed by namespace, and the watched paths (namespaces)
// can change while it runs.
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
import { type KubeObject, type ObjectMeta, objectKey } from './objects.ts';
import { Slots } from './slots.ts';

export interface InformerOptions<T extends KubeObject = KubeObject> {
  /** For logs and metrics, e.g. "origins". */
  name: string;
  /** Collection paths to list and watch (one per namespace, or one cluster-wide); setPaths() changes them. */
  paths: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Full relist that repairs any missed event (default 10 min). */
  relistIntervalMs?: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is restarted (default 90 s). */
  stallTimeoutMs?: number;
  /**
   * What is cached of each object (list items and watch events): keep only what the
   * caller reads. It must keep metadata (name, namespace, resourceVersion). It gets the
   * object without metadata.managedFields, which no cache keeps. Default: all the rest.
   */
  transform?: (raw: T) => T;
  /** Objects per list page (default 500); each page is applied before the next is asked for. */
  pageSize?: number;
  /** List pages in flight at once over all paths (default 2): bounds what a relist of many namespaces holds. */
  listConcurrency?: number;
  logger: Logger;
  /** Called on each restart of a watch, with why (for metrics). */
  onRestart?: (reason: 'error' | 'stall' | 'expired' | 'closed' | 'relist') => void;
  /** Called when a list or watch request got through (true) or failed (false, with the error). */
  onApiResult?: (ok: boolean, err?: unknown) => void;
}

const BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };
/** ±20 %, so informers started together do not relist together. */
const jitter = (ms: number) => ms * (0.8 + Math.random() * 0.4);

/** managedFields is most of a typical object's size and nothing a controller decides on. */
export function withoutManagedFields<T extends KubeObject>(o: T): T {
  const meta = o.metadata as ObjectMeta & { managedFields?: unknown };
  if (meta?.managedFields !== undefined) delete meta.managedFields;
  return o;
}

/** The namespace a collection path is about; undefined for a cluster-wide path. */
export function namespaceOfPath(path: string): string | undefined {
  const m = /\/namespaces\/([^/]+)\/[^/]+$/.exec(path);
  return m?.[1] === undefined ? undefined : decodeURIComponent(m[1]);
}

/** The namespace part of an object key ('' for cluster-scoped objects). */
const namespaceOfKey = (key: string) => {
  const slash = key.indexOf('/');
  return slash < 0 ? '' : key.slice(0, slash);
};

interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T & { code?: number; message?: string };
}

type Defaulted = 'relistIntervalMs' | 'stallTimeoutMs' | 'transform' | 'pageSize' | 'listConcurrency';

export class Informer<T extends KubeObject> extends EventEmitter<{
  add: [T];
  update: [T, T];
  delete: [T];
  /** Every path has been listed once (again after setPaths() added one). */
  synced: [];
  /** This path has been listed once. */
  pathSynced: [string];
}> {
  /** Objects by namespace ('' for cluster-scoped), then by key: a namespace's objects without a scan. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private count = 0;
  private readonly syncedPaths = new Set<string>();
  private readonly running = new Map<string, { abort: AbortController; loop: Promise<void> }>();
  private paths: string[];
  private started = false;
  private stopped = false;
  private readonly listSlots: Slots;
  private readonly opts: Omit<InformerOptions<T>, Defaulted> & Required<Pick<InformerOptions<T>, Defaulted>>;

  private readonly client: KubeClient;

  constructor(client: KubeClient, opts: InformerOptions<T>) {
    super();
    this.client = client;
    this.opts = {
      relistIntervalMs: 600_000,
      stallTimeoutMs: 90_000,
      transform: (o) => o,
      pageSize: 500,
      listConcurrency: 2,
      ...opts,
    };
    this.paths = [...new Set(opts.paths)];
    this.listSlots = new Slots(this.opts.listConcurrency);
  }

  get synced(): boolean {
    return this.paths.every((p) => this.syncedPaths.has(p));
  }

  /** Whether `path` has been listed once since it was added. */
  hasSynced(path: string): boolean {
    return this.syncedPaths.has(path);
  }

  /** Objects in the cache. */
  get size(): number {
    return this.count;
  }

  get watchedPaths(): readonly string[] {
    return this.paths;
  }

  start(): void {
    this.started = true;
    for (const path of this.paths) this.startPath(path);
  }

  /**
   * Watches these paths from now on: new ones are listed and watched, dropped ones
   * stop and their objects leave the cache (with a delete event each).
   */
  setPaths(paths: readonly string[]): void {
    const next = [...new Set(paths)];
    const removed = this.paths.filter((p) => !next.includes(p));
    const added = next.filter((p) => !this.paths.includes(p));
    this.paths = next;
    for (const path of removed) {
      this.running.get(path)?.abort.abort();
      this.running.delete(path);
      this.syncedPaths.delete(path);
      for (const [key, old] of this.objectsOf(path)) this.remove(key, old);
    }
    if (this.started && !this.stopped) for (const path of added) this.startPath(path);
    // Dropping the one unsynced path can complete the sync.
    if (removed.length > 0 && added.length === 0 && this.synced) this.emit('synced');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const loops = [...this.running.values()];
    for (const r of loops) r.abort.abort();
    await Promise.all(loops.map((r) => r.loop));
  }

  /** Resolves once every path was listed once. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.once('synced', resolve));
  }

  get(key: string): T | undefined {
    return this.byNamespace.get(namespaceOfKey(key))?.get(key);
  }

  /** Namespaces that have at least one cached object ('' for cluster-scoped objects). */
  namespaces(): string[] {
    return [...this.byNamespace.keys()];
  }

  /** Every cached object, or a namespace's (from the index: no scan of the others). */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    return [...this.byNamespace.values()].flatMap((m) => [...m.values()]);
  }

  private startPath(path: string): void {
    const abort = new AbortController();
    this.running.set(path, { abort, loop: this.run(path, abort.signal) });
  }

  /** The cached objects a path covers: its namespace's, or all for a cluster-wide path. */
  private objectsOf(path: string): [string, T][] {
    const ns = namespaceOfPath(path);
    if (ns !== undefined) return [...(this.byNamespace.get(ns) ?? [])];
    return [...this.byNamespace.values()].flatMap((m) => [...m]);
  }

  private async run(path: string, signal: AbortSignal): Promise<void> {
    let failures = 0;
    let resourceVersion: string | undefined;
    let relistAt = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined || Date.now() >= relistAt) {
          resourceVersion = await this.relist(path, signal);
          relistAt = Date.now() + jitter(this.opts.relistIntervalMs);
        }
        if (signal.aborted) break;
        const started = Date.now();
        const outcome = await this.watch(path, signal, resourceVersion, relistAt - Date.now());
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

  /**
   * Lists `path` page by page into the cache, then removes the objects of that path
   * the list no longer has. Only the pages in flight are held, never the whole list
   * beside the cache (two copies of a large collection: what a relist used to cost).
   */
  private async relist(path: string, signal: AbortSignal): Promise<string> {
    const query = { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
    const pages = this.client.pages<T>(path, query, this.opts.pageSize);
    const seen = new Set<string>();
    let resourceVersion = '';
    for (;;) {
      const release = await this.listSlots.acquire();
      try {
        const page = await pages.next();
        if (page.done === true) break;
        if (signal.aborted) {
          await pages.return(undefined);
          return resourceVersion;
        }
        resourceVersion = page.value.resourceVersion;
        for (const raw of page.value.items) {
          const item = this.opts.transform(withoutManagedFields(raw));
          const key = objectKey(item);
          seen.add(key);
          this.upsert(key, item);
        }
      } finally {
        release();
      }
    }
    this.opts.onApiResult?.(true);
    // Dropped while listing: its objects are gone from the cache, and must stay gone.
    if (signal.aborted) return resourceVersion;
    for (const [key, old] of this.objectsOf(path)) {
      if (!seen.has(key)) this.remove(key, old);
    }
    if (!this.syncedPaths.has(path)) {
      this.syncedPaths.add(path);
      this.emit('pathSynced', path);
      if (this.synced) this.emit('synced');
    }
    return resourceVersion;
  }

  private upsert(key: string, item: T): void {
    const ns = namespaceOfKey(key);
    let objects = this.byNamespace.get(ns);
    if (objects === undefined) {
      objects = new Map();
      this.byNamespace.set(ns, objects);
    }
    const old = objects.get(key);
    objects.set(key, item);
    if (old === undefined) {
      this.count++;
      this.emit('add', item);
    } else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('update', item, old);
  }

  private remove(key: string, old: T): void {
    const ns = namespaceOfKey(key);
    const objects = this.byNamespace.get(ns);
    if (objects?.delete(key) !== true) return;
    this.count--;
    if (objects.size === 0) this.byNamespace.delete(ns);
    this.emit('delete', old);
  }

  /** One watch request, until the server ends it, it stalls, it fails, or the relist is due. */
  private async watch(
    path: string,
    pathSignal: AbortSignal,
    resourceVersion: string,
    untilRelistMs: number,
  ): Promise<{ resourceVersion: string; reason: 'closed' | 'stall' | 'expired' | 'relist' }> {
    const local = new AbortController();
    const signal = AbortSignal.any([pathSignal, local.signal]);
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
        // Lines read before an abort must not land in the cache of a path no longer watched.
        if (pathSignal.aborted) break;
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
    const object = this.opts.transform(withoutManagedFields(event.object));
    const key = objectKey(object);
    if (event.type === 'DELETED') {
      const old = this.get(key);
      if (old !== undefined) this.remove(key, old);
      else this.emit('delete', object);
      return;
    }
    this.upsert(key, object);
  }
}
