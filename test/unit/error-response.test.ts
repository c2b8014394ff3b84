import fc from 'fast-check';
import { parseList, Token } from 'structured-headers';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES } from '../../src/api/causes.ts';
import { buildErrorResponse, negotiate, sfString } from '../../src/sidecar/error-response.ts';
import type { Failure } from '../../src/upstream/failure.ts';

const refused: Failure = {
  cause: 'connection_refused',
  phase: 'connect',
  code: 'ECONNREFUSED',
  errno: -111,
  address: '127.0.0.17',
  attempts: [
    {
      cause: 'connection_refused',
      phase: 'connect',
      code: 'ECONNREFUSED',
      errno: -111,
      address: '127.0.0.17',
      port: 8081,
      target: 0,
      elapsedMs: 0.4,
      message: '',
    },
  ],
  elapsedMs: 0.6,
};
const dns: Failure = {
  cause: 'dns_error',
  phase: 'dns',
  code: 'ENOTFOUND',
  rcode: 'NXDOMAIN',
  attempts: [],
  elapsedMs: 1,
};
const tls: Failure = {
  cause: 'tls_alert_received',
  phase: 'tls',
  code: 'ERR_SSL',
  alertId: 70,
  attempts: [],
  elapsedMs: 1,
};
const opts = {
  profile: 'Uniform' as const,
  retryAfterSeconds: 5,
  showDetails: false,
  proxyName: 'originguard',
  requestId: 'abc-1',
};

describe('error response', () => {
  it('answers 531 Upstream Connection Error with Proxy-Status and Retry-After', () => {
    const r = buildErrorResponse(refused, 'text/html', opts);
    expect(r.statusCode).toBe(531);
    expect(r.statusMessage).toBe('Upstream Connection Error');
    expect(r.headers['retry-after']).toBe('5');
    const [member] = parseList(r.headers['proxy-status'] as string);
    expect(member?.[0]).toEqual(new Token('originguard'));
    expect(member?.[1].get('error')).toEqual(new Token('connection_refused'));
  });

  it('never shows internal addresses or errno unless the Origin allows it', () => {
    for (const accept of ['text/html', 'application/json', '*/*']) {
      const r = buildErrorResponse(refused, accept, opts);
      expect(r.body).not.toContain('127.0.0.17');
      expect(r.headers['proxy-status']).not.toContain('127.0.0.17');
      expect(r.body).not.toContain('ECONNREFUSED');
    }
    const shown = buildErrorResponse(refused, 'application/json', { ...opts, showDetails: true });
    expect(JSON.parse(shown.body).attempts[0].address).toBe('127.0.0.17');
    expect(parseList(shown.headers['proxy-status'] as string)[0]?.[1].get('next-hop')).toBe(
      '127.0.0.17:8081',
    );
  });

  it('renders a small HTML page like the Edgio one for browsers', () => {
    const r = buildErrorResponse(refused, 'text/html,application/xhtml+xml,*/*;q=0.8', opts);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body).toContain('<title>531 Upstream Connection Error</title>');
    expect(r.body).toContain('<h1>531 Upstream Connection Error</h1>');
    expect(r.body).toContain('<p>Unable to connect to the origin server');
  });

  it('answers JSON to API clients with the cause and phase', () => {
    const r = buildErrorResponse(refused, 'application/json', opts);
    expect(JSON.parse(r.body)).toMatchObject({
      status: 531,
      cause: 'connection_refused',
      phase: 'connect',
      requestId: 'abc-1',
    });
  });

  it('carries the DNS rcode and the TLS alert id as RFC 9209 parameters', () => {
    expect(
      parseList(buildErrorResponse(dns, '', opts).headers['proxy-status'] as string)[0]?.[1].get('rcode'),
    ).toBe('NXDOMAIN');
    expect(
      parseList(buildErrorResponse(tls, '', opts).headers['proxy-status'] as string)[0]?.[1].get('alert-id'),
    ).toBe(70);
  });

  it('uses 537 and 533 under the Edgio profile', () => {
    expect(buildErrorResponse(dns, '', { ...opts, profile: 'Edgio' }).statusCode).toBe(537);
    expect(buildErrorResponse(tls, '', { ...opts, profile: 'Edgio' }).statusCode).toBe(533);
  });

  it('emits a Proxy-Status that parses as an RFC 8941 list for every cause and any details (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CAUSE_NAMES),
        fc.string(),
        fc.boolean(),
        (cause, address, showDetails) => {
          const f: Failure = { cause, phase: 'connect', code: 'X', address, attempts: [], elapsedMs: 3 };
          const header = buildErrorResponse(f, 'application/json', { ...opts, showDetails }).headers[
            'proxy-status'
          ] as string;
          const list = parseList(header);
          expect(list).toHaveLength(1);
          expect(list[0]?.[1].get('error')).toEqual(new Token(cause));
        },
      ),
    );
  });

  it('escapes strings so hostile text cannot break the header (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(() => parseList(`x; details=${sfString(s)}`)).not.toThrow();
      }),
    );
  });
});

describe('negotiate', () => {
  it.each([
    ['text/html', 'html'],
    ['application/json', 'json'],
    ['application/problem+json', 'json'],
    ['text/html;q=0.5, application/json', 'json'],
    ['*/*', 'text'],
    [undefined, 'text'],
  ] as const)('Accept %s gives %s', (accept, kind) => {
    expect(negotiate(accept)).toBe(kind);
  });
});
