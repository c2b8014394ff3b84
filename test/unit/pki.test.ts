import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  certificateInfo,
  generateCA,
  issueServingCertificate,
  nextPki,
  type PkiPolicy,
  renewalDue,
  serviceDnsNames,
  splitPem,
} from '../../src/operator/pki.ts';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const NOW = Date.parse('2026-09-01T12:00:00Z');
const DNS = serviceDnsNames('originguard-webhook', 'originguard-system');

const policy: PkiPolicy = {
  dnsNames: DNS,
  ipAddresses: ['127.0.0.1'],
  servingValidityMs: 30 * DAY,
  caValidityMs: 300 * DAY,
  renewFraction: 1 / 3,
};

describe('the webhook CA and serving certificate', () => {
  it('issues a serving certificate that chains to the CA and names the Service and IPs', async () => {
    const ca = await generateCA({ validityMs: 300 * DAY, now: NOW });
    const serving = await issueServingCertificate(ca, {
      dnsNames: DNS,
      ipAddresses: ['127.0.0.1'],
      validityMs: 30 * DAY,
      now: NOW,
    });
    const caCert = new X509Certificate(ca.cert);
    const leaf = new X509Certificate(serving.cert);
    expect(caCert.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    for (const name of DNS) expect(leaf.checkHost(name)).toBe(name);
    expect(leaf.checkHost('other.originguard-system.svc')).toBeUndefined();
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // The key in the pair is the certificate's own.
    const pub = createPublicKey(createPrivateKey(serving.key)).export({ format: 'der', type: 'spki' });
    expect(Buffer.compare(pub, leaf.publicKey.export({ format: 'der', type: 'spki' }))).toBe(0);
  });

  it('gives certificates their validity from `now`, and never lets the leaf outlive the CA', async () => {
    const ca = await generateCA({ validityMs: 10 * DAY, now: NOW });
    const serving = await issueServingCertificate(ca, { dnsNames: DNS, validityMs: 30 * DAY, now: NOW });
    expect(certificateInfo(ca.cert).notAfter.getTime()).toBe(NOW + 10 * DAY);
    expect(certificateInfo(serving.cert).notAfter.getTime()).toBe(NOW + 10 * DAY);
    expect(certificateInfo(serving.cert).notBefore.getTime()).toBeLessThanOrEqual(NOW);
  });

  it('gives every certificate its own serial', async () => {
    const ca = await generateCA({ validityMs: DAY, now: NOW });
    const a = await issueServingCertificate(ca, { dnsNames: DNS, validityMs: DAY, now: NOW });
    const b = await issueServingCertificate(ca, { dnsNames: DNS, validityMs: DAY, now: NOW });
    expect(certificateInfo(a.cert).serial).toMatch(/^[0-9A-F]+$/);
    expect(certificateInfo(a.cert).serial).not.toBe(certificateInfo(b.cert).serial);
  });
});

describe('renewalDue', () => {
  it('is due once less than a third of the lifetime is left, not before', async () => {
    const ca = await generateCA({ validityMs: 30 * DAY, now: NOW });
    const { notBefore, notAfter } = certificateInfo(ca.cert);
    const lifetime = notAfter.getTime() - notBefore.getTime();
    const boundary = notAfter.getTime() - lifetime / 3;
    expect(renewalDue(ca.cert, NOW)).toBe(false);
    expect(renewalDue(ca.cert, boundary - 1000)).toBe(false);
    expect(renewalDue(ca.cert, boundary + 1000)).toBe(true);
    expect(renewalDue(ca.cert, notAfter.getTime() + 1)).toBe(true);
  });

  it('takes another fraction, and treats a not-yet-valid certificate as due', async () => {
    const ca = await generateCA({ validityMs: 30 * DAY, now: NOW });
    const { notAfter } = certificateInfo(ca.cert);
    expect(renewalDue(ca.cert, notAfter.getTime() - 20 * DAY, 1 / 2)).toBe(false);
    expect(renewalDue(ca.cert, notAfter.getTime() - 10 * DAY, 1 / 2)).toBe(true);
    expect(renewalDue(ca.cert, NOW - DAY)).toBe(true);
  });
});

describe('nextPki: what the Secret should hold', () => {
  it('creates a CA and a serving certificate from nothing, or from garbage', async () => {
    for (const current of [undefined, { caBundle: 'junk', caKey: '', cert: 'junk', key: '' }]) {
      const pki = await nextPki(current, policy, NOW);
      if (pki === undefined) throw new Error('expected a fresh PKI');
      expect(splitPem(pki.caBundle)).toHaveLength(1);
      expect(new X509Certificate(pki.cert).verify(new X509Certificate(pki.caBundle).publicKey)).toBe(true);
    }
  });

  it('keeps a PKI that is not due, and renews only the serving certificate when it is', async () => {
    const pki = await nextPki(undefined, policy, NOW);
    if (pki === undefined) throw new Error('expected a fresh PKI');
    expect(await nextPki(pki, policy, NOW + 19 * DAY)).toBeUndefined();
    const renewed = await nextPki(pki, policy, NOW + 21 * DAY);
    expect(renewed?.caBundle).toBe(pki.caBundle);
    expect(renewed?.caKey).toBe(pki.caKey);
    expect(certificateInfo(renewed?.cert ?? '').serial).not.toBe(certificateInfo(pki.cert).serial);
  });

  it('reissues the serving certificate when the names it must cover change', async () => {
    const pki = await nextPki(undefined, policy, NOW);
    if (pki === undefined) throw new Error('expected a fresh PKI');
    const moved = await nextPki(pki, { ...policy, dnsNames: serviceDnsNames('webhook', 'edge') }, NOW);
    expect(new X509Certificate(moved?.cert ?? '').checkHost('webhook.edge.svc')).toBe('webhook.edge.svc');
    expect(moved?.caBundle).toBe(pki.caBundle);
  });

  it('rotates the CA before expiry, keeping the old CA trusted and the old serving certificate until it is due', async () => {
    const short = { ...policy, caValidityMs: 60 * DAY, servingValidityMs: 30 * DAY };
    const first = await nextPki(undefined, short, NOW);
    if (first === undefined) throw new Error('expected a fresh PKI');
    // 40.5 days on: the CA has less than a third left; the serving certificate (renewed at 21 days) is not due.
    const mid = (await nextPki(first, short, NOW + 21 * DAY)) ?? first;
    const rotated = await nextPki(mid, short, NOW + 40.5 * DAY);
    if (rotated === undefined) throw new Error('expected a CA rotation');
    const [newCa = '', oldCa = ''] = splitPem(rotated.caBundle);
    expect(oldCa).toBe(splitPem(first.caBundle)[0]);
    expect(newCa).not.toBe(oldCa);
    expect(rotated.cert).toBe(mid.cert);
    // When the serving certificate is due, the new CA signs it.
    const later = await nextPki(rotated, short, NOW + 45 * DAY);
    expect(new X509Certificate(later?.cert ?? '').verify(new X509Certificate(newCa).publicKey)).toBe(true);
    // Once the old CA expired it leaves the bundle.
    const pruned = await nextPki(later, short, NOW + 61 * DAY);
    expect(splitPem(pruned?.caBundle ?? '')).toEqual([newCa]);
  });
});
