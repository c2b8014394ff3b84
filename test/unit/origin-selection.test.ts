import { describe, expect, it } from 'vitest';
import type { OriginManifest } from '../../src/api/origin.ts';
import { selectOrigins } from '../../src/sidecar/origin-selection.ts';

/** An Origin as the API server returns it (defaults are filled by validation). */
function origin(
  name: string,
  opts: { port?: number; hosts?: string[]; created?: string; app?: string; generation?: number } = {},
) {
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'Origin',
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      generation: opts.generation ?? 1,
      creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z',
      resourceVersion: '1',
    },
    spec: {
      selector: { matchLabels: { app: opts.app ?? 'edge' } },
      listen: { port: opts.port ?? 8080 },
      ...(opts.hosts === undefined ? {} : { hosts: opts.hosts }),
      upstream: { host: '127.0.0.1', port: 3000 },
    },
  };
}

const labels = { app: 'edge', 'pod-template-hash': 'abc' };
const base = { labels, reservedPorts: [9901], lastGood: new Map<string, OriginManifest>() };
const names = (serve: OriginManifest[]) => serve.map((o) => o.metadata.name);

describe('selectOrigins', () => {
  it('serves the valid Origins whose selector selects the pod, with defaults filled in', () => {
    const { serve, errors } = selectOrigins({
      ...base,
      origins: [origin('shop'), origin('blog', { app: 'blog', port: 8081 })],
    });
    expect(names(serve)).toEqual(['shop']);
    expect(errors).toEqual([]);
    expect(serve[0]?.spec.listen.address).toBe('0.0.0.0');
    expect(serve[0]?.metadata.uid).toBe('uid-shop');
  });

  it('refuses the newer of two Origins claiming one port, so every pod keeps the older one', () => {
    const older = origin('zeta', { created: '2026-01-01T00:00:00Z' });
    const newer = origin('alpha', { created: '2026-01-02T00:00:00Z' });
    const { serve, errors } = selectOrigins({ ...base, origins: [newer, older] });
    expect(names(serve)).toEqual(['zeta']);
    expect(errors).toEqual([
      'shop/alpha: spec.hosts: port 8080 already has an Origin without hosts (shop/zeta); set hosts on one of them (shop/alpha is newer: not served)',
    ]);
  });

  it('breaks a tie of creation times by name, and serves Origins that share a port by host', () => {
    const a = origin('a', { hosts: ['a.example.re'] });
    const b = origin('b', { hosts: ['b.example.re'] });
    const c = origin('c', { hosts: ['a.example.re'] });
    const { serve, errors } = selectOrigins({ ...base, origins: [c, b, a] });
    expect(names(serve)).toEqual(['a', 'b']);
    expect(errors).toEqual([
      'shop/c: spec.hosts: a.example.re on port 8080 is already served by shop/a (shop/c is newer: not served)',
    ]);
  });

  it("refuses an Origin on the sidecar's admin port, saying so", () => {
    const { serve, errors } = selectOrigins({ ...base, origins: [origin('shop', { port: 9901 })] });
    expect(serve).toEqual([]);
    expect(errors).toEqual([
      "shop/shop: spec.listen.port: 9901 is the sidecar's admin port; choose another port (not served)",
    ]);
  });

  it('keeps serving the last good version of an Origin whose new version is invalid', () => {
    const good = selectOrigins({ ...base, origins: [origin('shop')] }).serve;
    const bad = origin('shop', { generation: 2 });
    (bad.spec.upstream as { port: number }).port = 70000;
    const lastGood = new Map(good.map((o) => [`shop/${o.metadata.name}`, o]));
    const { serve, errors } = selectOrigins({ ...base, lastGood, origins: [bad] });
    expect(serve).toEqual(good);
    expect(errors).toEqual([
      'Origin shop/shop generation 2 refused: spec.upstream.port: must be 1-65535, got 70000; still serving generation 1',
    ]);
  });

  it('refuses an invalid Origin that selects the pod and says nothing of one that does not', () => {
    const bad = origin('shop');
    (bad.spec.upstream as { port: number }).port = 0;
    const other = origin('blog', { app: 'blog' });
    (other.spec.upstream as { port: number }).port = 0;
    const { serve, errors } = selectOrigins({ ...base, origins: [bad, other] });
    expect(serve).toEqual([]);
    expect(errors).toEqual([
      'Origin shop/shop generation 1 refused: spec.upstream.port: must be 1-65535, got 0',
    ]);
  });

  it('stops serving an Origin once the labels no longer match', () => {
    const { serve } = selectOrigins({ ...base, labels: { app: 'other' }, origins: [origin('shop')] });
    expect(serve).toEqual([]);
  });
});
