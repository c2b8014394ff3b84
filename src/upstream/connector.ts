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
import { errorCode } from '../errors.ts';
import { classifyError, connectFailure } from './classify.ts';
import { AttemptError, ConnectTimeoutError, DnsError, UpstreamConnectError } from './errors.ts';
import type { Attempt, RawError } from './failure.ts';
import type { ResolvedAddress, Resolver } from './resolver.ts';

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

/**
 * Opens one connection to one address, TLS included, within `timeoutMs`. Rejects
 * with an AttemptError carrying the phase (connect or tls) the attempt failed in.
 */
function connectAddress(
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
      reject(new AttemptError(phase, err));
    };
    const timer = setTimeout(() => fail(new ConnectTimeoutError(timeoutMs, phase)), timeoutMs);
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
  const attempt = err instanceof AttemptError ? err : undefined;
  const seen = (attempt?.cause ?? err) as RawError;
  const p = attempt?.phase ?? phase;
  return {
    ...classifyError(seen, p),
    phase: p,
    address,
    port,
    target,
    elapsedMs: performance.now() - startedAt,
    message: seen.message,
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
    // Anything but a DnsError comes from c-ares itself: keep its code, else a bad answer.
    const e =
      err instanceof DnsError
        ? err
        : new DnsError(errorCode(err) ?? 'EBADRESP', target.host, (err as Error).message);
    attempts.push(attemptOf(e, 'dns', target.host, target.port, index, started));
  }
  for (const extra of target.extraAddresses) {
    if (!addresses.some((a) => a.address === extra))
      addresses.push({ address: extra, family: net.isIPv6(extra) ? 6 : 4 });
  }
  return addresses;
}

/** Tries every address of every target in order; resolves with the first socket or the classified failure. */
async function connectUpstream(options: ConnectorOptions): Promise<net.Socket> {
  const started = performance.now();
  const attempts: Attempt[] = [];
  for (const [index, target] of options.targets.entries()) {
    for (const address of await addressesOf(target, index, options, attempts)) {
      for (let i = 0; i < options.attemptsPerAddress; i++) {
        const attemptStarted = performance.now();
        try {
          const socket = await connectAddress(address, target, options.connectTimeoutMs);
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
