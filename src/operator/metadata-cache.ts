// Labels of a few named cluster-scoped objects (a node's zone, a namespace's
// opt-in to the operator's probe), read one by one as metadata only
// (PartialObjectMetadata) and kept for a while. Only `get` by name: no list or
// watch of every node, which would cost memory in a large cluster and rights
// the operator does not otherwise need.
import type { Logger } from 'pino';
import { type KubeClient, METADATA_ONLY } from '../kube/client.ts';

interface Entry {
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly at: number;
}

export interface MetadataCacheOptions {
  /** REST path of the object named `name`. */
  readonly path: (name: string) => string;
  /** How long a read holds (default 5 min). */
  readonly ttlMs?: number;
  /** Most objects kept; the oldest read goes first (default 5000). */
  readonly maxEntries?: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class MetadataCache {
  readonly #client: KubeClient;
  readonly #opts: MetadataCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<Readonly<Record<string, string>> | undefined>>();
  readonly #now: () => number;

  constructor(client: KubeClient, opts: MetadataCacheOptions) {
    this.#client = client;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** The labels last read, if still fresh; undefined when unknown (not read, gone, or unreadable). */
  cached(name: string): Readonly<Record<string, string>> | undefined {
    const e = this.#entries.get(name);
    return e !== undefined && this.#fresh(e) ? e.labels : undefined;
  }

  /** The object's labels, read if not fresh; undefined when it does not exist or cannot be read. */
  async labels(name: string): Promise<Readonly<Record<string, string>> | undefined> {
    const e = this.#entries.get(name);
    if (e !== undefined && this.#fresh(e)) return e.labels;
    let p = this.#pending.get(name);
    if (p === undefined) {
      p = this.#read(name).finally(() => this.#pending.delete(name));
      this.#pending.set(name, p);
    }
    return p;
  }

  #fresh(e: Entry): boolean {
    return this.#now() - e.at < (this.#opts.ttlMs ?? 300_000);
  }

  async #read(name: string): Promise<Readonly<Record<string, string>> | undefined> {
    let labels: Readonly<Record<string, string>> | undefined;
    try {
      const o = await this.#client.get<{ metadata?: { labels?: Record<string, string> } }>(
        this.#opts.path(name),
        METADATA_ONLY,
      );
      labels = o === undefined ? undefined : (o.metadata?.labels ?? {});
    } catch (err) {
      // Unknown for now (forbidden, API away): asked again after the TTL.
      this.#opts.logger.debug({ err: (err as Error).message, name }, 'cannot read labels');
    }
    this.#entries.delete(name);
    this.#entries.set(name, { labels, at: this.#now() });
    const max = this.#opts.maxEntries ?? 5000;
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= max) break;
      this.#entries.delete(oldest);
    }
    return labels;
  }
}
