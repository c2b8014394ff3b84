// Checklist steps 2 and 3, TCP and TLS to one address, each with the sidecar's
// own attempt (connectAddress: same socket options, SNI, ALPN and CA, and its
// exact timeout) and classified by the sidecar's classifier. The TLS probe does
// not reject a bad certificate itself: it completes the handshake to read the
// chain, then applies the verdict OpenSSL and the name check gave, as the
// sidecar would have (or only reports it under --insecure / insecureSkipVerify).
import type net from 'node:net';
import tls, { type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Phase } from '../api/causes.ts';
import { metaTime } from '../kube/time.ts';
import { classifyError } from '../upstream/classify.ts';
import { connectAddress } from '../upstream/connector.ts';
import { AttemptError } from '../upstream/errors.ts';
import type { RawError } from '../upstream/failure.ts';
import { hostPort } from '../upstream/host-port.ts';
import type { ResolvedAddress } from '../upstream/resolver.ts';
import { daysAgo } from './explain.ts';
import { sniOf, type TargetPlan } from './plan.ts';
import type { Certificate, Step, TlsDetail } from './schema.ts';

const DAY_MS = 86_400_000;

/** How each connect-phase cause reads in the TCP step. */
const TCP_RESULTS: Readonly<Record<string, string>> = {
  connection_refused: 'refused',
  connection_timeout: 'timeout',
  destination_ip_unroutable: 'unreachable',
  destination_ip_prohibited: 'prohibited',
  connection_terminated: 'reset',
};

/** An error message on one line: OpenSSL's "...:SSL routines:func:reason:file:line:" reads as its reason. */
function oneLine(message: string): string {
  const openssl = /SSL routines:[^:]*:([^:]+):/.exec(message);
  return openssl?.[1] ?? message.split('\n')[0]?.trim() ?? '';
}

/** The raw code and, when it says more, the message: our own codes go by their message alone. */
function codeAndMessage(code: string, message: string): string {
  const text = oneLine(message);
  if (code.startsWith('OG_')) return text;
  return text === '' || text.includes(code) ? code : `${code}: ${text}`;
}

/** A failed attempt as a step: cause and phase as the sidecar's classifier gives them. */
export function failedStep(
  err: unknown,
  fallback: Phase,
  base: Pick<Step, 'phase' | 'target' | 'address' | 'elapsedMs'>,
): Step {
  const attempt = err instanceof AttemptError ? err : undefined;
  const seen = (attempt?.cause ?? err) as RawError;
  const phase = attempt?.phase ?? fallback;
  const c = classifyError(seen, phase);
  const result = phase === 'connect' ? (TCP_RESULTS[c.cause] ?? c.cause) : c.cause;
  return {
    ...base,
    ok: false,
    cause: c.cause,
    failedIn: phase,
    code: c.code,
    ...(c.rcode === undefined ? {} : { rcode: c.rcode }),
    ...(c.alertId === undefined ? {} : { alertId: c.alertId }),
    detail: `${result} (${codeAndMessage(c.code, seen.message)})`,
  };
}

/** A step, and the connection it made when the caller keeps it (to send the HTTP request over). */
export interface Probed {
  readonly step: Step;
  readonly socket?: net.Socket;
}

/** A step that worked, with its connection when `keep`; one kept must not crash the process if the origin resets it while it waits. */
function worked(
  base: Pick<Step, 'phase' | 'target' | 'address' | 'elapsedMs'>,
  detail: string,
  socket: net.Socket,
  keep: boolean,
  extra: Pick<Step, 'tls'> = {},
): Probed {
  const step: Step = { ...base, ok: true, cause: null, failedIn: null, code: null, detail, ...extra };
  if (!keep) {
    socket.destroy();
    return { step };
  }
  socket.on('error', () => socket.destroy());
  return { step, socket };
}

/** Step 2: one TCP connection to one address, closed at once unless `keep`. */
export async function probeTcp(
  target: TargetPlan,
  index: number,
  address: ResolvedAddress,
  timeoutMs: number,
  keep = false,
): Promise<Probed> {
  const started = performance.now();
  const base = { phase: 'tcp' as const, target: index, address: hostPort(address.address, target.port) };
  try {
    const socket = await connectAddress(
      address,
      { host: target.host, port: target.port, extraAddresses: [] },
      timeoutMs,
    );
    return worked({ ...base, elapsedMs: performance.now() - started }, 'connected', socket, keep);
  } catch (err) {
    return { step: failedStep(err, 'connect', { ...base, elapsedMs: performance.now() - started }) };
  }
}

const dn = (name: Record<string, string | string[] | undefined> | undefined): string =>
  Object.entries(name ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');

/** RFC 3339 to the second: certificates carry no milliseconds. */

function describeCert(c: PeerCertificate, now: number): Certificate {
  const notBefore = new Date(c.valid_from);
  const notAfter = new Date(c.valid_to);
  return {
    subject: dn(c.subject as unknown as Record<string, string>),
    issuer: dn(c.issuer as unknown as Record<string, string>),
    subjectAltNames: c.subjectaltname === undefined ? [] : c.subjectaltname.split(', '),
    notBefore: metaTime(notBefore),
    notAfter: metaTime(notAfter),
    daysLeft: Math.trunc((notAfter.getTime() - now) / DAY_MS),
    serialNumber: c.serialNumber,
    fingerprint256: c.fingerprint256,
  };
}

/** The certificates the origin sent, leaf first (Node links each to its issuer; a root links to itself). */
function chainOf(leaf: DetailedPeerCertificate, now: number): Certificate[] {
  const chain: Certificate[] = [];
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = leaf;
  while (c?.raw !== undefined && !seen.has(c.fingerprint256) && chain.length < 10) {
    seen.add(c.fingerprint256);
    chain.push(describeCert(c, now));
    c = c.issuerCertificate;
  }
  return chain;
}

function tlsDetail(socket: TLSSocket, target: TargetPlan, address: ResolvedAddress): TlsDetail {
  const plan = target.tls as NonNullable<TargetPlan['tls']>;
  const leaf = socket.getPeerCertificate(true);
  const sni = sniOf(target);
  // Node checks the SNI name, else the address connected to (connectAddress gives no other host).
  const nameChecked = sni ?? address.address;
  const authError = socket.authorizationError as unknown as string | null | undefined;
  const nameError =
    leaf.raw === undefined ? new Error('no certificate') : tls.checkServerIdentity(nameChecked, leaf);
  const chainError = authError && authError !== 'ERR_TLS_CERT_ALTNAME_INVALID' ? authError : null;
  return {
    serverName: sni ?? null,
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.standardName ?? null,
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null,
    chain: leaf.raw === undefined ? [] : chainOf(leaf, Date.now()),
    trust: plan.trust,
    chainVerified: chainError === null,
    chainError,
    nameChecked,
    nameMatches: nameError === undefined,
    verificationEnforced: !plan.insecure,
  };
}

function describeTls(d: TlsDetail): string {
  const leaf = d.chain[0];
  const parts = [`${d.protocol ?? '?'} ${d.cipher ?? ''}`.trim()];
  if (d.alpn !== null) parts.push(`ALPN ${d.alpn}`);
  parts.push(d.serverName === null ? 'no SNI (IP address)' : `SNI ${d.serverName}`);
  if (leaf !== undefined) {
    const left =
      leaf.notAfter < new Date().toISOString()
        ? `expired ${daysAgo(-leaf.daysLeft)}`
        : `${leaf.daysLeft} days left`;
    parts.push(`certificate ${leaf.subject} issued by ${leaf.issuer}, until ${leaf.notAfter} (${left})`);
  }
  parts.push(
    d.chainVerified
      ? `chain verified against ${d.trust}`
      : `chain NOT verified (${d.chainError}) against ${d.trust}`,
  );
  parts.push(d.nameMatches ? `name ${d.nameChecked} matches` : `name ${d.nameChecked} does NOT match`);
  return parts.join('; ');
}

/**
 * Step 3: a TLS handshake with one address, as the sidecar makes it; the chain is
 * read even when it fails verification. With `keep`, a connection that would carry
 * traffic (verified, or verification not enforced) is kept open.
 */
export async function probeTls(
  target: TargetPlan,
  index: number,
  address: ResolvedAddress,
  timeoutMs: number,
  keep = false,
): Promise<Probed> {
  const plan = target.tls as NonNullable<TargetPlan['tls']>;
  const started = performance.now();
  const base = { phase: 'tls' as const, target: index, address: hostPort(address.address, target.port) };
  let socket: TLSSocket;
  try {
    socket = (await connectAddress(
      address,
      {
        host: target.host,
        port: target.port,
        extraAddresses: [],
        tls: {
          ...(plan.servername === undefined ? {} : { servername: plan.servername }),
          ...(plan.ca === undefined ? {} : { ca: plan.ca }),
          rejectUnauthorized: false,
        },
      },
      timeoutMs,
    )) as TLSSocket;
  } catch (err) {
    return { step: failedStep(err, 'tls', { ...base, elapsedMs: performance.now() - started }) };
  }
  const elapsedMs = performance.now() - started;
  const detail = tlsDetail(socket, target, address);
  const authError = socket.authorizationError as unknown as string | null | undefined;
  const verified = detail.chainVerified && detail.nameMatches;
  if (verified || plan.insecure)
    return worked({ ...base, elapsedMs }, describeTls(detail), socket, keep, { tls: detail });
  socket.destroy();
  const code = authError || 'ERR_TLS_CERT_ALTNAME_INVALID';
  const c = classifyError({ name: 'Error', message: code, code }, 'tls');
  return {
    step: {
      ...base,
      elapsedMs,
      ok: false,
      cause: c.cause,
      failedIn: 'tls',
      code,
      detail: describeTls(detail),
      tls: detail,
    },
  };
}
