/**
 * One undici request against a fixture, reduced to what the taxonomy needs: the error
 * (code, name, syscall, message), where it surfaced (request or body), and whether
 * undici's connection was established, observed through its diagnostics channels
 * (`undici:client:connected` / `undici:client:connectError`), matched by port.
 */
import dc from 'node:diagnostics_channel';
import { Client } from 'undici';

export interface RequestOutcome {
  /** HTTP status when a response head arrived. */
  status?: number;
  /** Bytes of body read (when the body completed). */
  bodyBytes?: number;
  /** Where the error surfaced, if any. */
  failedAt?: 'request' | 'body';
  code?: string;
  name?: string;
  syscall?: string;
  message?: string;
  /** `connected`: undici:client:connected fired; `connectError`: undici:client:connectError fired. */
  connection: 'connected' | 'connectError' | 'none';
  /** Code carried by the connectError event. */
  connectErrorCode?: string;
  ms: number;
}

export interface RequestOutcomeOptions {
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Extra `connect` options (TLS: ca, servername, maxVersion, cert, key…). */
  connect?: Record<string, unknown>;
  method?: string;
  path?: string;
  body?: string | Buffer;
  /** Abort the request after this many ms (undici's own timers are ~1 s coarse). */
  abortAfterMs?: number;
}

interface ConnectMsg {
  connectParams?: { port?: string | number };
  error?: { code?: string };
}

/** Performs one request with a fresh undici Client (closed afterwards). */
export async function requestOutcome(url: string, opts: RequestOutcomeOptions = {}): Promise<RequestOutcome> {
  const port = new URL(url).port;
  let connection: RequestOutcome['connection'] = 'none';
  let connectErrorCode: string | undefined;
  const onConnected = (m: unknown) => {
    if (String((m as ConnectMsg).connectParams?.port) === port) connection = 'connected';
  };
  const onConnectError = (m: unknown) => {
    const msg = m as ConnectMsg;
    if (String(msg.connectParams?.port) !== port) return;
    connection = 'connectError';
    connectErrorCode = msg.error?.code;
  };
  dc.subscribe('undici:client:connected', onConnected);
  dc.subscribe('undici:client:connectError', onConnectError);
  const client = new Client(url, {
    connect: { timeout: opts.connectTimeoutMs ?? 1000, ...opts.connect },
    headersTimeout: opts.headersTimeoutMs ?? 2000,
    bodyTimeout: opts.bodyTimeoutMs ?? 2000,
  });
  const start = performance.now();
  const out: Omit<RequestOutcome, 'connection' | 'ms'> = {};
  const setErr = (where: 'request' | 'body', err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    out.failedAt = where;
    if (e.code !== undefined) out.code = e.code;
    out.name = e.name;
    if (e.syscall !== undefined) out.syscall = e.syscall;
    out.message = e.message;
  };
  const signal = opts.abortAfterMs === undefined ? undefined : AbortSignal.timeout(opts.abortAfterMs);
  try {
    const res = await client.request({
      method: opts.method ?? 'GET',
      path: opts.path ?? '/',
      ...(opts.body !== undefined ? { body: opts.body } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
    out.status = res.statusCode;
    try {
      out.bodyBytes = (await res.body.arrayBuffer()).byteLength;
    } catch (err) {
      setErr('body', err);
    }
  } catch (err) {
    setErr('request', err);
  } finally {
    dc.unsubscribe('undici:client:connected', onConnected);
    dc.unsubscribe('undici:client:connectError', onConnectError);
    await client.destroy().catch(() => {});
  }
  return {
    ...out,
    connection,
    ...(connectErrorCode !== undefined ? { connectErrorCode } : {}),
    ms: Math.round(performance.now() - start),
  };
}
