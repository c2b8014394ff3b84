// The webhook's PKI as pure functions of (what the Secret holds, policy, now):
// a CA, a serving certificate signed by it, when to renew each, and what the
// Secret should hold next. WebCrypto (ECDSA P-256) through @peculiar/x509; no I/O,
// so rotation is unit-tested with a clock instead of waiting for it.
import 'reflect-metadata';
import { createPrivateKey, type webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;

/** A PEM certificate and its PKCS#8 PEM private key. */
export interface CertificatePair {
  cert: string;
  key: string;
}

export interface CertificateInfo {
  notBefore: Date;
  notAfter: Date;
  /** Hexadecimal, as openssl prints it. */
  serial: string;
}

export function certificateInfo(pem: string): CertificateInfo {
  const c = new X509Certificate(pem);
  return { notBefore: c.validFromDate, notAfter: c.validToDate, serial: c.serialNumber };
}

/** Whether less than `fraction` of the certificate's lifetime is left at `now` (or it is not valid). */
export function renewalDue(certPem: string, now: number, fraction = 1 / 3): boolean {
  const { notBefore, notAfter } = certificateInfo(certPem);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  if (now < notBefore.getTime()) return true;
  return notAfter.getTime() - now < lifetime * fraction;
}

/** The certificates of a PEM bundle, in order. */
export function splitPem(bundle: string): string[] {
  return [...bundle.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)].map(
    (m) => `${m[0]}\n`,
  );
}

// Backdated for clocks slightly behind ours, but by little for short lifetimes,
// so renewal at a third of the lifetime still means what it says.
const backdate = (validityMs: number) => Math.min(HOUR, validityMs / 10);

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function generateCA(opts: {
  validityMs: number;
  now: number;
  commonName?: string;
}): Promise<CertificatePair> {
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${opts.commonName ?? 'originguard webhook CA'}, O=originguard`,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(opts.now - backdate(opts.validityMs)),
    notAfter: new Date(opts.now + opts.validityMs),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** A serving certificate signed by `ca`; it never outlives the CA. */
export async function issueServingCertificate(
  ca: CertificatePair,
  opts: { dnsNames: readonly string[]; ipAddresses?: readonly string[]; validityMs: number; now: number },
): Promise<CertificatePair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await crypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), ALG, false, [
    'sign',
  ]);
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const san = [
    ...opts.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const notAfter = Math.min(opts.now + opts.validityMs, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${opts.dnsNames[0] ?? opts.ipAddresses?.[0] ?? 'originguard-webhook'}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    notBefore: new Date(Math.max(opts.now - backdate(opts.validityMs), caCert.notBefore.getTime())),
    notAfter: new Date(notAfter),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(san),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** DNS names of the webhook Service, as the API server may address it. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** What the Secret holds: ca.crt (current CA first, then older ones still valid), ca.key, tls.crt, tls.key. */
export interface StoredPki {
  caBundle: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface PkiPolicy {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  servingValidityMs: number;
  caValidityMs: number;
  /** Renew when less than this fraction of a lifetime is left. */
  renewFraction: number;
}

const MAX_CAS_IN_BUNDLE = 3;

function servingNeedsRenewal(
  pki: StoredPki,
  cas: X509Certificate[],
  policy: PkiPolicy,
  now: number,
): boolean {
  if (renewalDue(pki.cert, now, policy.renewFraction)) return true;
  const leaf = new X509Certificate(pki.cert);
  const names = policy.dnsNames.every((n) => leaf.checkHost(n, { wildcards: false }) === n);
  const ips = policy.ipAddresses.every((ip) => leaf.checkIP(ip) !== undefined);
  const chained = cas.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  return !(names && ips && chained);
}

/** The CAs of a stored PKI, or undefined if any part of it cannot be parsed. */
function readablePki(pki: StoredPki): X509Certificate[] | undefined {
  try {
    const cas = splitPem(pki.caBundle).map((pem) => new X509Certificate(pem));
    new X509Certificate(pki.cert);
    createPrivateKey(pki.key);
    if (pki.caKey !== '') createPrivateKey(pki.caKey);
    return cas;
  } catch {
    return undefined;
  }
}

/**
 * The Secret's next contents, or undefined when `current` can stay. The CA rotates
 * first and stays in the bundle while valid, and the serving certificate moves to
 * the new CA only when it is due itself: by then every API server trusts the new CA.
 */
export async function nextPki(
  current: StoredPki | undefined,
  policy: PkiPolicy,
  now: number,
): Promise<StoredPki | undefined> {
  const cas = current === undefined ? undefined : readablePki(current);
  if (current === undefined || cas === undefined) {
    // Missing or unreadable: start over with a fresh CA.
    const ca = await generateCA({ validityMs: policy.caValidityMs, now });
    const serving = await issueServingCertificate(ca, {
      ...policy,
      validityMs: policy.servingValidityMs,
      now,
    });
    return { caBundle: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
  }
  let next: StoredPki = current;
  const valid = cas.filter((c) => c.validToDate.getTime() > now);
  const [newest] = valid;
  if (
    newest === undefined ||
    renewalDue(newest.toString(), now, policy.renewFraction) ||
    current.caKey === ''
  ) {
    const ca = await generateCA({ validityMs: policy.caValidityMs, now });
    const kept = valid.slice(0, MAX_CAS_IN_BUNDLE - 1).map((c) => c.toString());
    next = { ...next, caBundle: [ca.cert, ...kept].join(''), caKey: ca.key };
    valid.unshift(new X509Certificate(ca.cert));
  } else if (valid.length !== cas.length) {
    next = { ...next, caBundle: valid.map((c) => c.toString()).join('') };
  }
  if (servingNeedsRenewal(next, valid, policy, now)) {
    const [caCert = ''] = splitPem(next.caBundle);
    const serving = await issueServingCertificate(
      { cert: caCert, key: next.caKey },
      { ...policy, validityMs: policy.servingValidityMs, now },
    );
    next = { ...next, cert: serving.cert, key: serving.key };
  }
  return next === current ? undefined : next;
}
