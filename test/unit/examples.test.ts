// Every Origin in examples/ is valid as the standalone sidecar reads it (the
// cluster side, the API server accepting them with the same defaults, is in
// test/cluster/crds.test.ts), and together they show what the docs promise.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { OriginManifest } from '../../src/api/origin.ts';
import { validateOrigin } from '../../src/api/validate.ts';

const dir = new URL('../../examples/', import.meta.url);

const documents = readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .flatMap((file) => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    return parseAllDocuments(text).map((d, i) => ({ file, index: i, text, object: d.toJS() as unknown }));
  });

const origins = documents.map(({ file, index, object }) => {
  const r = validateOrigin(object);
  return { file, index, result: r, spec: r.ok ? r.value.spec : undefined };
});

function specs(file: string): OriginManifest['spec'][] {
  return origins.filter((o) => o.file === file).map((o) => o.spec as OriginManifest['spec']);
}

describe('examples/', () => {
  it.each(origins)('$file (document $index) is a valid Origin', ({ result }) => {
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it.each([...new Set(documents.map((d) => d.file))])(
    '%s starts with comments saying what it shows',
    (file) => {
      const text = readFileSync(new URL(file, dir), 'utf8');
      expect(text.split('\n')[0]).toMatch(/^# \S/);
    },
  );

  it('fills in the defaults of omitted fields, as the API server does', () => {
    const [spec] = specs('same-pod.yaml');
    expect(spec).toMatchObject({
      listen: { address: '0.0.0.0' },
      upstream: { connectAttempts: 1 },
      timeouts: { connect: '1s', response: '60s', idle: '4s' },
      outlierDetection: { consecutiveFailures: 5, baseEjectionTime: '1s', maxEjectionTime: '30s' },
      errorResponse: { statusProfile: 'Uniform', retryAfter: '5s', showDetails: false },
    });
  });

  it('show an origin in the same pod, a Service, external TLS, failover, the Edgio profile and a CDN in front', () => {
    expect(specs('same-pod.yaml')[0]?.upstream.host).toBe('127.0.0.1');
    expect(specs('service.yaml')[0]?.upstream.host).toMatch(/^[a-z0-9-]+\.[a-z0-9-]+\.svc\.cluster\.local$/);
    const [publicTls, privateTls] = specs('external-tls.yaml');
    expect(publicTls?.upstream.tls).toMatchObject({ enabled: true });
    expect(publicTls?.upstream.tls?.caBundle).toBeUndefined();
    expect(privateTls?.upstream.tls).toMatchObject({ enabled: true, serverName: expect.any(String) });
    expect(privateTls?.upstream.tls?.caBundle).toContain('-----BEGIN CERTIFICATE-----');
    expect(specs('failover.yaml')[0]?.upstream.backups?.length).toBeGreaterThan(0);
    expect(specs('edgio-profile.yaml')[0]?.errorResponse.statusProfile).toBe('Edgio');
    expect(specs('behind-cdn.yaml')[0]?.forwardedHeaders.trustedProxies?.length).toBeGreaterThan(0);
  });

  it('trust no one’s forwarding headers unless they say whose to trust', () => {
    for (const { file, spec } of origins) {
      if (file !== 'behind-cdn.yaml') expect(spec?.forwardedHeaders, file).toEqual({ trustedHops: 0 });
      expect(spec?.request, file).toMatchObject({ underscoresInHeaders: 'Drop', trace: 'Refuse' });
    }
  });
});
