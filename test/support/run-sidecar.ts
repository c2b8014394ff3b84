// Starts a real sidecar in-process on loopback for network tests: real
// listeners, real undici pools, real sockets to the fixtures' origins.
import pino from 'pino';
import { request } from 'undici';
import { freePort } from '../../hack/net.ts';
import { API_VERSION, type OriginManifest } from '../../src/api/origin.ts';
import { validateOrigin } from '../../src/api/validate.ts';
import type { ClientLimits } from '../../src/sidecar/listener.ts';
import { SidecarMetrics } from '../../src/sidecar/metrics.ts';
import { Sidecar } from '../../src/sidecar/sidecar.ts';
import { Resolver } from '../../src/upstream/resolver.ts';

export type SpecPatch = Record<string, unknown> & { upstream: Record<string, unknown> };

/**
 * A valid Origin manifest on the given port, with the test's spec fields merged in.
 * Health checks are off unless the test sets them: traffic tests count connections
 * and trials that a check would add to.
 */
export function manifest(name: string, port: number, spec: SpecPatch): OriginManifest {
  const raw = {
    apiVersion: API_VERSION,
    kind: 'Origin',
    metadata: { name, namespace: 'test', generation: 1 },
    spec: {
      selector: { matchLabels: { app: name } },
      listen: { port, address: '127.0.0.1' },
      healthCheck: { enabled: false },
      ...spec,
      errorResponse: { retryAfter: '5s', ...(spec.errorResponse as object | undefined) },
    },
  };
  const v = validateOrigin(raw);
  if (!v.ok) throw new Error(`test manifest invalid: ${v.errors.join('; ')}`);
  return v.value;
}

export interface RunningSidecar {
  readonly sidecar: Sidecar;
  readonly metrics: SidecarMetrics;
  readonly port: number;
  readonly url: string;
  readonly logs: Record<string, unknown>[];
  get(path?: string, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly ms: number;
}

export interface StartOptions {
  readonly dnsServer?: string;
  readonly maxBodyBytes?: number;
  /** Memory for request bodies received before forwarding (default: the sidecar's). */
  readonly requestBufferMemory?: number;
  readonly limits?: Partial<ClientLimits>;
  /** More Origins on other ports or hosts. */
  readonly extra?: (port: number) => OriginManifest[];
}

/** GETs a URL with a fresh connection and reads the whole body. */
export async function get(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  const started = performance.now();
  const r = await request(url, {
    method: method as 'GET',
    headers: { accept: 'application/json', ...headers },
    reset: true,
  });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body, ms: performance.now() - started };
}

export async function startSidecar(spec: SpecPatch, opts: StartOptions = {}): Promise<RunningSidecar> {
  const port = await freePort();
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const metrics = new SidecarMetrics();
  const resolver = new Resolver(opts.dnsServer === undefined ? {} : { servers: [opts.dnsServer] });
  const sidecar = new Sidecar({
    logger,
    metrics,
    resolver,
    maxBodyBytes: opts.maxBodyBytes ?? 100 * 1024 * 1024,
    requestBufferMemory: opts.requestBufferMemory,
    limits: {
      maxHeaderBytes: 16384,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 300_000,
      keepAliveTimeoutMs: 5_000,
      ...opts.limits,
    },
  });
  const result = await sidecar.apply([manifest('web', port, spec), ...(opts.extra?.(port) ?? [])]);
  if (result.errors.length > 0) throw new Error(result.errors.join('; '));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    await sidecar.drain(1000);
  };
  return {
    sidecar,
    metrics,
    port,
    url,
    logs,
    get: (path = '/', headers = {}) => get(`${url}${path}`, headers),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Parses the single Proxy-Status member this proxy adds into its parameters. */
export function proxyStatus(answer: Answer): Record<string, string> {
  const header = answer.headers['proxy-status'];
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const out: Record<string, string> = {};
  for (const part of text.split(/;(?=(?:[^"]*"[^"]*")*[^"]*$)/).slice(1)) {
    const eq = part.indexOf('=');
    out[part.slice(0, eq).trim()] = part
      .slice(eq + 1)
      .trim()
      .replace(/^"|"$/g, '');
  }
  return out;
}

export { freePort };
