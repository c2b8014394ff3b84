// Establishes the connection to an origin for undici: resolves the name with the
// sidecar's resolver, races the target's addresses with a stagger (RFC 8305:
// the next one starts when the previous fails or has not connected within 250 ms),
// then tries each backup origin the same way, every attempt with an exact timeout
// covering DNS, TCP and TLS, and records each failed attempt's phase and cause.
// The address book remembers which address answered and which failed, so a dead
// address costs one stagger once. Whatever fails here failed before the request
// was sent, so trying the next address is always safe; the request is never
// resent once undici has written it.
import net from 'node:net';
import tls from 'node:tls';
import type { buildConnector } from 'undici';
import type { Phase } from '../api/causes.ts';
import { errorCode } from '../errors.ts';
import { AddressBook, type Candidate } from './address-book.ts';
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
  /** What is known of each address across connections (default: one of its own per connector). */
  readonly addressBook?: AddressBook;
  /** Delay before racing the next address while an attempt is pending (default CONNECT_STAGGER_MS). */
  readonly staggerMs?: number;
  /** Called with the duration of each successful connection, for metrics. */
  readonly onConnected?: (ms: number, target: number) => void;
}

/** RFC 8305's recommended Connection Attempt Delay. */
export const CONNECT_STAGGER_MS = 250;

/**
 * Opens one connection to one address, TLS included, within `timeoutMs`. Rejects
 * with an AttemptError carrying the phase (connect or tls) the attempt failed in;
 * `signal` cancels it (the race was won by another address). Also the attempt
 * `originguard diagnose` makes, so it connects as the sidecar does.
 */
export function connectAddress(
  address: ResolvedAddress,
  target: ConnectTarget,
  timeoutMs: number,
  signal?: AbortSignal,
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
    signal?.addEventListener('abort', () => fail(signal.reason as Error), { once: true });
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
  return withExtraAddresses(addresses, target.extraAddresses);
}

/** A target's addresses: the resolved ones, then its extra ones (spec.upstream.addresses) not among them. */
export function withExtraAddresses(
  resolved: readonly ResolvedAddress[],
  extra: readonly string[],
): ResolvedAddress[] {
  const out = [...resolved];
  for (const address of extra) {
    if (!out.some((a) => a.address === address)) out.push({ address, family: net.isIPv6(address) ? 6 : 4 });
  }
  return out;
}

/**
 * Races the candidates of one target (RFC 8305 §5): each attempt starts when the
 * previous one failed or after the stagger, whichever comes first; the first
 * connection wins and the attempts still pending are cancelled. Resolves
 * undefined when every candidate failed; failed attempts are appended to
 * `attempts` in the order they started.
 */
function race(
  target: ConnectTarget,
  index: number,
  candidates: readonly Candidate[],
  options: ConnectorOptions & { readonly addressBook: AddressBook },
  attempts: Attempt[],
): Promise<net.Socket | undefined> {
  const book = options.addressBook;
  const failed: [number, Attempt][] = [];
  const pending = new Set<AbortController>();
  return new Promise((resolve) => {
    let next = 0;
    let won = false;
    let stagger: NodeJS.Timeout | undefined;
    const settle = (socket: net.Socket | undefined) => {
      attempts.push(...failed.sort(([a], [b]) => a - b).map(([, attempt]) => attempt));
      resolve(socket);
    };
    const start = () => {
      clearTimeout(stagger);
      if (won) return;
      if (next >= candidates.length) {
        if (pending.size === 0) settle(undefined);
        return;
      }
      const order = next++;
      const candidate = candidates[order] as Candidate;
      const controller = new AbortController();
      pending.add(controller);
      const started = performance.now();
      connectAddress(candidate, target, options.connectTimeoutMs, controller.signal).then(
        (socket) => {
          pending.delete(controller);
          if (won) {
            socket.destroy();
            return;
          }
          won = true;
          clearTimeout(stagger);
          for (const loser of pending) loser.abort(new Error('another address connected first'));
          book.connected(candidate);
          options.onConnected?.(performance.now() - started, index);
          settle(socket);
        },
        (err: unknown) => {
          pending.delete(controller);
          if (won || controller.signal.aborted) return;
          const attempt = attemptOf(err, 'connect', candidate.address, target.port, index, started);
          failed.push([order, attempt]);
          book.failed(candidate, attempt.cause);
          start();
        },
      );
      if (next < candidates.length) stagger = setTimeout(start, options.staggerMs ?? CONNECT_STAGGER_MS);
    };
    start();
  });
}

/** Races the addresses of each target in turn; resolves with the first socket or the classified failure. */
async function connectUpstream(
  options: ConnectorOptions & { readonly addressBook: AddressBook },
): Promise<net.Socket> {
  const started = performance.now();
  const attempts: Attempt[] = [];
  for (const [index, target] of options.targets.entries()) {
    const addresses = await addressesOf(target, index, options, attempts);
    const ordered = options.addressBook.order(addresses.map((a) => ({ ...a, port: target.port })));
    const candidates = ordered.flatMap((c) => Array.from({ length: options.attemptsPerAddress }, () => c));
    const socket = await race(target, index, candidates, options, attempts);
    if (socket !== undefined) return socket;
  }
  throw new UpstreamConnectError(connectFailure(attempts, performance.now() - started));
}

/** An undici `connect` option: ignores undici's nominal origin and uses the Origin's targets. */
export function undiciConnector(options: ConnectorOptions): buildConnector.connector {
  const withBook = { ...options, addressBook: options.addressBook ?? new AddressBook() };
  return (_opts, callback) => {
    connectUpstream(withBook).then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err, null),
    );
  };
}
