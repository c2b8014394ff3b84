// A thin client for the Kubernetes REST API: paths, JSON, server-side apply and
// watch streams, over undici's Agent (its request API, not fetch: fetch would
// load WebSocket, caches and the rest of undici's entry, several MB that the
// sidecar in every pod would pay for). Where the credentials come from is pluggable: a
// kubeconfig through @kubernetes/client-node for the operator (kubeconfig.ts),
// or the pod's projected token and CA for the sidecar (in-cluster.ts), which must
// not pay for loading the whole Kubernetes client. Controllers need a handful of
// verbs on a few resources, so one generic client reads better than the
// generated per-group APIs.
import { STATUS_CODES } from 'node:http';
import type { Agent as AgentType, Dispatcher } from 'undici';
import apiRequest from 'undici/lib/api/api-request.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import { isNotFound, KubeApiError } from './errors.ts';

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface ResourceRef {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
}

/** The REST path of a resource collection, object or subresource. */
export function resourcePath(r: ResourceRef): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespace === undefined ? '' : `/namespaces/${encodeURIComponent(r.namespace)}`;
  const name = r.name === undefined ? '' : `/${encodeURIComponent(r.name)}`;
  const sub = r.subresource === undefined ? '' : `/${r.subresource}`;
  return `${base}${ns}/${r.plural}${name}${sub}`;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Another connection pool, e.g. a watch's own (see newConnection). */
  dispatcher?: Dispatcher;
  /** Accept header, e.g. METADATA_ONLY (default application/json). */
  accept?: string;
}

/** Accept header asking for an object's metadata only (PartialObjectMetadata): no spec, no status. */
export const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** Where requests go and how they authenticate. */
export interface Credentials {
  /** https://host:port of the API server, no trailing slash. */
  server: string;
  /** Authorization and any other headers, for each request (tokens rotate). */
  headers(): Promise<Record<string, string>>;
  /** TLS settings: the CA to trust, a client certificate. */
  tls: AgentType.Options['connect'] & object;
}

/** A response whose status is below 400; `body` is a Node stream (a watch reads it line by line). */
export interface RawResponse {
  status: number;
  body: Dispatcher.ResponseData['body'];
  /** The whole body as text, as fetch's Response has it. */
  text(): Promise<string>;
}

export class KubeClient {
  readonly server: string;
  readonly credentials: Credentials;
  private readonly defaultTimeoutMs: number;
  private readonly agent: AgentType;

  constructor(credentials: Credentials, defaultTimeoutMs = 30_000) {
    this.credentials = credentials;
    this.defaultTimeoutMs = defaultTimeoutMs;
    this.server = credentials.server.replace(/\/$/, '');
    this.agent = this.newConnection();
  }

  /**
   * A connection pool of its own. A watch uses one and destroys it when the watch
   * ends, so a connection that went silent is never reused by the next request.
   */
  newConnection(): AgentType {
    return new Agent({ connect: this.credentials.tls, keepAliveTimeout: 30_000 });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Sends a request and returns the raw response (for watch streams). Throws KubeApiError on failure. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<RawResponse> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = {
      ...(await this.credentials.headers()),
      accept: opts.accept ?? 'application/json',
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    const signals = [
      opts.signal,
      opts.timeoutMs === 0 ? undefined : AbortSignal.timeout(opts.timeoutMs ?? this.defaultTimeoutMs),
    ];
    try {
      // The signal also ends the body: a timed-out or aborted watch stream stops.
      const res = await apiRequest.call(opts.dispatcher ?? this.agent, {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any(signals.filter((s) => s !== undefined)),
      });
      if (res.statusCode >= 400) throw await apiError(method, path, res.statusCode, res.body);
      return { status: res.statusCode, body: res.body, text: () => res.body.text() };
    } catch (err) {
      if (err instanceof KubeApiError) throw err;
      const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
      const detail = e.cause?.code ?? e.code ?? e.cause?.message ?? e.message;
      throw new KubeApiError(method, path, 0, 'Unreachable', `cannot reach the API server: ${detail}`);
    }
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** GET an object; undefined when it does not exist. */
  async get<T>(path: string, accept?: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path, accept === undefined ? {} : { accept });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Lists a collection, following `continue` pages. */
  async list<T>(path: string, query: Query = {}, pageSize = 500): Promise<ListResult<T>> {
    const items: T[] = [];
    let resourceVersion = '';
    for await (const page of this.pages<T>(path, query, pageSize)) {
      items.push(...page.items);
      resourceVersion = page.resourceVersion;
    }
    return { items, resourceVersion };
  }

  /**
   * Lists a collection one page at a time (`limit`/`continue`): a caller that applies
   * each page before asking for the next never holds the whole collection. Every page
   * is of the same snapshot; the last one's resourceVersion is the list's.
   */
  async *pages<T>(path: string, query: Query = {}, pageSize = 500): AsyncGenerator<ListResult<T>> {
    let cont: string | undefined;
    do {
      const page = await this.request<{
        items: T[];
        metadata: { resourceVersion: string; continue?: string };
      }>('GET', path, { query: { ...query, limit: pageSize, continue: cont } });
      cont = page.metadata.continue || undefined;
      yield { items: page.items, resourceVersion: page.metadata.resourceVersion };
    } while (cont !== undefined);
  }

  /** Server-side apply (JSON is YAML, so the body goes as is). */
  apply<T>(path: string, body: unknown, fieldManager: string, force = true): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force, fieldValidation: 'Strict' },
    });
  }

  create<T>(path: string, body: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>('POST', path, { body, query: { fieldManager } });
  }

  /** PUT: optimistic concurrency through metadata.resourceVersion in `body`. */
  replace<T>(path: string, body: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>('PUT', path, { body, query: { fieldManager } });
  }

  patch<T>(path: string, body: unknown, type: 'json' | 'merge', fieldManager?: string): Promise<T> {
    const contentType = type === 'json' ? 'application/json-patch+json' : 'application/merge-patch+json';
    return this.request<T>('PATCH', path, { body, contentType, query: { fieldManager } });
  }

  /** DELETE; true if it existed. */
  async delete(path: string, query: Query = {}): Promise<boolean> {
    try {
      await this.request('DELETE', path, { query });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}

async function apiError(method: string, path: string, status: number, body: RawResponse['body']) {
  const text = await body.text().catch(() => '');
  const statusText = STATUS_CODES[status] ?? '';
  let reason = statusText;
  let message = text.slice(0, 2000) || statusText;
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason ?? reason;
    message = status.message ?? message;
  } catch {
    // Not a metav1.Status: keep the raw text.
  }
  return new KubeApiError(method, path, status, reason, message);
}
