/**
 * TLS fixtures: certificates generated in-process with @peculiar/x509 (ECDSA P-256,
 * Node's WebCrypto as provider; PEMs usable by node:tls), and TLS / plaintext origins
 * on 127.0.0.1 for every TLS failure the sidecar classifies.
 *
 * Client-side results (undici, `connect: {ca: pki.ca.cert, servername}`), observed on
 * Node 24 / OpenSSL 3 (see test/network/fixtures.test.ts):
 *
 * | server                                           | error code                                   |
 * |--------------------------------------------------|----------------------------------------------|
 * | `good`                                           | 200                                          |
 * | `expired`                                        | CERT_HAS_EXPIRED                             |
 * | `notYetValid`                                    | CERT_NOT_YET_VALID                           |
 * | `wrongSan`                                       | ERR_TLS_CERT_ALTNAME_INVALID                 |
 * | `selfSigned`                                     | DEPTH_ZERO_SELF_SIGNED_CERT                  |
 * | `unknownCaLeaf` (leaf only)                      | UNABLE_TO_VERIFY_LEAF_SIGNATURE              |
 * | `unknownCaChain` (leaf + its root)               | SELF_SIGNED_CERT_IN_CHAIN                    |
 * | TLS 1.3-only server, client maxVersion TLSv1.2   | ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION (70)    |
 * | client cert required, TLS 1.2                    | ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE (40) |
 * | client cert required, TLS 1.3                    | UND_ERR_SOCKET "other side closed", after    |
 * |                                                  | undici:client:connected (not a connect error)|
 * | plaintext HTTP server on a TLS upstream          | ERR_SSL_WRONG_VERSION_NUMBER                 |
 *
 * Every failure above except the TLS 1.3 client-certificate one surfaces as an undici
 * connect error (`undici:client:connectError`). The alert number is in the message
 * (`SSL alert number N`, see {@link tlsAlertId}).
 *
 * Importing this module installs the `reflect-metadata` polyfill that
 * @peculiar/x509's dependency tsyringe requires.
 */
import 'reflect-metadata';
import type { webcrypto } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

/** A certificate (PEM; for chains: leaf first, then the issuers) and its PKCS#8 private key (PEM). */
export interface CertKey {
  cert: string;
  key: string;
}

export interface TestPki {
  /** The CA clients are told to trust (`ca: pki.ca.cert`). */
  ca: CertKey;
  /** The DNS name put in `good`'s SAN (besides localhost, 127.0.0.1, ::1). */
  dnsName: string;
  /** Valid leaf signed by `ca`; SAN: localhost, 127.0.0.1, ::1 and `dnsName`. */
  good: CertKey;
  /** Leaf signed by `ca` whose notAfter is in the past. */
  expired: CertKey;
  /** Leaf signed by `ca` whose notBefore is in the future. */
  notYetValid: CertKey;
  /** Leaf signed by `ca` whose only SAN is `wrong-name.invalid`. */
  wrongSan: CertKey;
  /** Self-signed leaf (no CA) with the good SANs. */
  selfSigned: CertKey;
  /** Leaf with the good SANs signed by a CA the client does not know; the server sends the leaf alone. */
  unknownCaLeaf: CertKey;
  /** Same leaf, the server sends leaf + the unknown root. */
  unknownCaChain: CertKey;
  /** A client certificate signed by `ca` (for a server with `requestCert`). */
  client: CertKey;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function sanExtension(dns: readonly string[], ips: readonly string[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension([
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
  ]);
}

interface Issuer {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

async function makeCa(name: string): Promise<Issuer> {
  const keys = await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

export interface LeafOptions {
  cn: string;
  dns?: readonly string[];
  ips?: readonly string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Omit to make a self-signed leaf. */
  issuer?: Issuer;
  usage?: 'server' | 'client';
}

async function makeLeaf(o: LeafOptions): Promise<{ cert: x509.X509Certificate; key: string }> {
  const keys = await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      o.usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth,
    ]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if ((o.dns?.length ?? 0) + (o.ips?.length ?? 0) > 0)
    extensions.push(sanExtension(o.dns ?? [], o.ips ?? []));
  const notBefore = o.notBefore ?? new Date(Date.now() - DAY);
  const notAfter = o.notAfter ?? new Date(Date.now() + 30 * DAY);
  let cert: x509.X509Certificate;
  if (o.issuer === undefined) {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: `CN=${o.cn}`,
      keys,
      signingAlgorithm: ALG,
      notBefore,
      notAfter,
      extensions,
    });
  } else {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(o.issuer.keys.publicKey));
    cert = await x509.X509CertificateGenerator.create({
      subject: `CN=${o.cn}`,
      issuer: o.issuer.cert.subject,
      publicKey: keys.publicKey,
      signingKey: o.issuer.keys.privateKey,
      signingAlgorithm: ALG,
      notBefore,
      notAfter,
      extensions,
    });
  }
  return { cert, key: await keyPem(keys.privateKey) };
}

/** Generates a fresh CA and every leaf of {@link TestPki} (ECDSA P-256; a few ms). */
export async function createTestPki(opts: { dnsName?: string } = {}): Promise<TestPki> {
  const dnsName = opts.dnsName ?? 'origin.test';
  const ca = await makeCa('originguard test CA');
  const unknown = await makeCa('originguard unknown CA');
  const goodDns = ['localhost', dnsName];
  const goodIps = ['127.0.0.1', '::1'];
  const now = Date.now();
  const [good, expired, notYetValid, wrongSan, selfSigned, unknownLeaf, client] = await Promise.all([
    makeLeaf({ cn: dnsName, dns: goodDns, ips: goodIps, issuer: ca }),
    makeLeaf({
      cn: dnsName,
      dns: goodDns,
      ips: goodIps,
      issuer: ca,
      notBefore: new Date(now - 10 * DAY),
      notAfter: new Date(now - DAY),
    }),
    makeLeaf({
      cn: dnsName,
      dns: goodDns,
      ips: goodIps,
      issuer: ca,
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 10 * DAY),
    }),
    makeLeaf({ cn: 'wrong-name.invalid', dns: ['wrong-name.invalid'], issuer: ca }),
    makeLeaf({ cn: dnsName, dns: goodDns, ips: goodIps }),
    makeLeaf({ cn: dnsName, dns: goodDns, ips: goodIps, issuer: unknown }),
    makeLeaf({ cn: 'originguard test client', issuer: ca, usage: 'client' }),
  ]);
  const pem = (c: x509.X509Certificate) => c.toString('pem');
  const pair = (l: { cert: x509.X509Certificate; key: string }): CertKey => ({
    cert: pem(l.cert),
    key: l.key,
  });
  return {
    ca: { cert: pem(ca.cert), key: await keyPem(ca.keys.privateKey) },
    dnsName,
    good: pair(good),
    expired: pair(expired),
    notYetValid: pair(notYetValid),
    wrongSan: pair(wrongSan),
    selfSigned: pair(selfSigned),
    unknownCaLeaf: pair(unknownLeaf),
    unknownCaChain: { cert: `${pem(unknownLeaf.cert)}\n${pem(unknown.cert)}`, key: unknownLeaf.key },
    client: pair(client),
  };
}

export interface TlsServerOptions {
  /** The server's certificate (chain) and key, e.g. `pki.good`. */
  certKey: CertKey;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  /** Require a client certificate signed by this CA (`requestCert` + `rejectUnauthorized`). */
  requireClientCertCa?: string;
  /** Response body of every request (status 200). Default `hello over tls`. */
  body?: string;
  host?: '127.0.0.1' | '::1';
}

export interface ServerHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** TLS handshakes that failed on the server side, with the server's error code. */
  readonly tlsErrors: readonly string[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

async function serve(
  server: http.Server | https.Server,
  host: string,
  scheme: string,
): Promise<ServerHandle> {
  const tlsErrors: string[] = [];
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    tlsErrors.push(err.code ?? err.message);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    host,
    port,
    url: `${scheme}://${bracket(host)}:${port}`,
    tlsErrors,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** An HTTPS origin answering `200` with `opts.body` to every request. */
export function startTlsServer(opts: TlsServerOptions): Promise<ServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const body = opts.body ?? 'hello over tls';
  const server = https.createServer(
    {
      cert: opts.certKey.cert,
      key: opts.certKey.key,
      ...(opts.minVersion !== undefined ? { minVersion: opts.minVersion } : {}),
      ...(opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {}),
      ...(opts.requireClientCertCa !== undefined
        ? { requestCert: true, rejectUnauthorized: true, ca: opts.requireClientCertCa }
        : {}),
    },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    },
  );
  return serve(server, host, 'https');
}

/**
 * A plaintext HTTP server answering `200 plain http` (and a `400` to a TLS ClientHello):
 * point a TLS upstream at it for ERR_SSL_WRONG_VERSION_NUMBER.
 */
export function startPlaintextServer(opts: { host?: '127.0.0.1' | '::1' } = {}): Promise<ServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    req.resume();
    res.end('plain http');
  });
  return serve(server, host, 'http');
}

/** Parses the TLS alert number out of an OpenSSL error message (`... SSL alert number 70`). */
export function tlsAlertId(err: { message?: string }): number | undefined {
  const m = /alert number (\d+)/.exec(err.message ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
