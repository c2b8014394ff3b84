// Establishes the connection to an origin for undici: resolves the name with the
// sidecar's resolver, tries every address (and then each backup origin) with an
// exact per-attempt timeout covering DNS, TCP and TLS, and records each failed
// attempt's phase and cause. Whatever fails here failed before the request was
// sent, so trying the next address is always safe; the request is never resent
// once undici has written it.
import net from 'node:net';
import tls from 'node:tls';
import type { buildConnector } from 'undici';
import type { Phase } from '../api/causes.ts';
import { type Attempt, classifyError, connectFailure, type Failure, type RawError } from './classify.ts';
import { DnsError, type ResolvedAddress, type Resolver } from './resolver.ts';

export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
  readonly extraAddresses: readonly string[];
  readonly tls?: {
    readonly servername?: string;
    readonly ca?: string;
    readonly rejectUnauthorized: boolean;
  };
}

export interface ConnectorOptions {
  readonly targets: readonly ConnectTarget[];
  readonly attemptsPerAddress: number;
  readonly connectTimeoutMs: number;
  readonly resolver: Resolver;
  /** Called with the duration of each successful connection, for metrics. */
  readonly onConnected?: (ms: number, target: number) => void;
}

/** The error undici receives when no address of any target accepted a connection. */
export class UpstreamConnectError extends Error {
  readonly code = 'OG_UPSTREAM_CONNECT';
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(`could not connect to the origin: ${failure.cause} (${failure.attempts.length} attempt(s))`);
    this.name = 'UpstreamConnectError';
    this.failure = failure;
  }
}

class AttemptTimeout extends Error {
  readonly code = 'OG_CONNECT_TIMEOUT';
  constructor(ms: number, phase: Phase) {
    super(`no ${phase === 'tls' ? 'TLS handshake' : 'connection'} within ${ms}ms`);
  }
}

/** Opens one connection to one address, TLS included, within `timeoutMs`. */
function connectOnce(
  address: ResolvedAddress,
  target: ConnectTarget,
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let phase: Phase = 'connect';
    let done = false;
    const tcp = net.connect({
      host: address.address,
      port: target.port,
      family: address.family,
      noDelay: true,
    });
    let current: net.Socket = tcp;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      current.destroy();
      tcp.destroy();
      reject(Object.assign(err, { originguardPhase: phase }));
    };
    const timer = setTimeout(() => fail(new AttemptTimeout(timeoutMs, phase)), timeoutMs);
    tcp.once('error', fail);
    tcp.once('connect', () => {
      if (target.tls === undefined) {
        done = true;
        clearTimeout(timer);
        tcp.removeListener('error', fail);
        resolve(tcp);
        return;
      }
      phase = 'tls';
      const servername = target.tls.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined);
      const secure = tls.connect({
        socket: tcp,
        ...(servername === undefined ? {} : { servername }),
        ...(target.tls.ca === undefined ? {} : { ca: target.tls.ca }),
        rejectUnauthorized: target.tls.rejectUnauthorized,
        ALPNProtocols: ['http/1.1'],
      });
      current = secure;
      secure.once('error', fail);
      secure.once('secureConnect', () => {
        done = true;
        clearTimeout(timer);
        tcp.removeListener('error', fail);
        secure.removeListener('error', fail);
        resolve(secure);
      });
    });
  });
}

function attemptOf(
  err: unknown,
  phase: Phase,
  address: string,
  port: number,
  target: number,
  startedAt: number,
): Attempt {
  const e = err as RawError & { originguardPhase?: Phase };
  const p = e.originguardPhase ?? phase;
  const c = classifyError(e, p);
  return {
    ...c,
    phase: p,
    address,
    port,
    target,
    elapsedMs: performance.now() - startedAt,
    message: e.message,
  };
}

/** c-ares rounds its timeouts up and retries; the connect timeout is exact, DNS included. */
function withDeadline<T>(work: Promise<T>, ms: number, host: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DnsError('ETIMEOUT', host, `${host}: no DNS answer within ${ms}ms`)),
      ms,
    );
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The addresses to try for one target: its resolved ones, then its extra ones. DNS failures become attempts. */
async function addressesOf(
  target: ConnectTarget,
  index: number,
  options: ConnectorOptions,
  attempts: Attempt[],
): Promise<ResolvedAddress[]> {
  const addresses: ResolvedAddress[] = [];
  const started = performance.now();
  try {
    addresses.push(
      ...(await withDeadline(
        options.resolver.resolve(target.host, options.connectTimeoutMs),
        options.connectTimeoutMs,
        target.host,
      )),
    );
  } catch (err) {
    const e =
      err instanceof DnsError
        ? err
        : Object.assign(err as Error, { code: (err as RawError).code ?? 'EBADRESP' });
    attempts.push(attemptOf(e, 'dns', target.host, target.port, index, started));
  }
  for (const extra of target.extraAddresses) {
    if (!addresses.some((a) => a.address === extra))
      addresses.push({ address: extra, family: net.isIPv6(extra) ? 6 : 4 });
  }
  return addresses;
}

/** Tries every address of every target in order; resolves with the first socket or the classified failure. */
export async function connectUpstream(options: ConnectorOptions): Promise<net.Socket> {
  const started = performance.now();
  const attempts: Attempt[] = [];
  for (const [index, target] of options.targets.entries()) {
    for (const address of await addressesOf(target, index, options, attempts)) {
      for (let i = 0; i < options.attemptsPerAddress; i++) {
        const attemptStarted = performance.now();
        try {
          const socket = await connectOnce(address, target, options.connectTimeoutMs);
          options.onConnected?.(performance.now() - attemptStarted, index);
          return socket;
        } catch (err) {
          attempts.push(attemptOf(err, 'connect', address.address, target.port, index, attemptStarted));
        }
      }
    }
  }
  throw new UpstreamConnectError(connectFailure(attempts, performance.now() - started));
}

/** An undici `connect` option: ignores undici's nominal origin and uses the Origin's targets. */
export function undiciConnector(options: ConnectorOptions): buildConnector.connector {
  return (_opts, callback) => {
    connectUpstream(options).then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err, null),
    );
  };
}
