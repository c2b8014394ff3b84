import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildRoutes, normalizeHost, type Routable, route } from '../../src/sidecar/router.ts';

const origin = (key: string, port: number, hosts?: string[]): Routable => ({
  key,
  listen: { port, address: '0.0.0.0' },
  ...(hosts === undefined ? {} : { hosts }),
});

describe('routing by port and Host', () => {
  const { table, errors } = buildRoutes([
    origin('web/shop', 8080, ['www.example.re', '*.shop.example.re']),
    origin('web/api', 8080, ['api.example.re']),
    origin('web/other', 9090),
  ]);

  it('builds without conflicts', () => expect(errors).toEqual([]));

  it('routes an exact host, ignoring case, port and a trailing dot', () => {
    expect(route(table.get(8080), 'WWW.Example.re:8080')?.key).toBe('web/shop');
    expect(route(table.get(8080), 'api.example.re.')?.key).toBe('web/api');
  });

  it('routes a wildcard to subdomains but not to the bare domain', () => {
    expect(route(table.get(8080), 'a.b.shop.example.re')?.key).toBe('web/shop');
    expect(route(table.get(8080), 'shop.example.re')).toBeUndefined();
  });

  it('answers nothing (421) for an undeclared host when no Origin on the port omits hosts', () => {
    expect(route(table.get(8080), 'evil.example')).toBeUndefined();
    expect(route(table.get(8080), undefined)).toBeUndefined();
  });

  it('sends every host to the Origin that declares no hosts', () => {
    expect(route(table.get(9090), 'anything.example')?.key).toBe('web/other');
  });

  it('refuses two Origins claiming the same host on a port, naming both', () => {
    const r = buildRoutes([origin('a/x', 80, ['h.re']), origin('b/y', 80, ['h.re'])]);
    expect(r.errors).toEqual(['b/y: spec.hosts: h.re on port 80 is already served by a/x']);
  });

  it('refuses two Origins without hosts on one port', () => {
    const r = buildRoutes([origin('a/x', 80), origin('b/y', 80)]);
    expect(r.errors[0]).toContain('already has an Origin without hosts (a/x)');
  });

  it('never routes a malformed Host (property)', () => {
    fc.assert(
      fc.property(fc.string(), (host) => {
        const h = normalizeHost(host);
        if (h !== undefined) expect(h).toMatch(/^(\[.*\]|[a-z0-9._-]+)$/);
      }),
    );
  });
});
