import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES, PHASES } from '../../src/api/causes.ts';
import { classifyError, connectFailure, dominantAttempt, statusFor } from '../../src/upstream/classify.ts';
import { CONNECT_TIMEOUT, RESPONSE_TIMEOUT } from '../../src/upstream/errors.ts';
import type { Attempt } from '../../src/upstream/failure.ts';

const err = (code: string, message = code, errno?: number) =>
  Object.assign(new Error(message), errno === undefined ? { code } : { code, errno });

describe('classifyError', () => {
  it.each([
    ['dns', 'ENOTFOUND', 'dns_error', 'NXDOMAIN'],
    ['dns', 'ENODATA', 'dns_error', 'NOERROR'],
    ['dns', 'ESERVFAIL', 'dns_error', 'SERVFAIL'],
    ['dns', 'EREFUSED', 'dns_error', 'REFUSED'],
    ['dns', 'ETIMEOUT', 'dns_timeout', undefined],
  ] as const)('maps %s %s to %s with rcode %s', (phase, code, cause, rcode) => {
    const c = classifyError(err(code), phase);
    expect(c.cause).toBe(cause);
    expect(c.rcode).toBe(rcode);
  });

  it.each([
    ['ECONNREFUSED', 'connection_refused'],
    [CONNECT_TIMEOUT, 'connection_timeout'],
    ['ETIMEDOUT', 'connection_timeout'],
    ['EHOSTUNREACH', 'destination_ip_unroutable'],
    ['ENETUNREACH', 'destination_ip_unroutable'],
    ['EINVAL', 'destination_ip_unroutable'],
    ['EACCES', 'destination_ip_prohibited'],
    ['EPERM', 'destination_ip_prohibited'],
    ['ECONNRESET', 'connection_terminated'],
  ] as const)('maps connect-phase %s to %s', (code, cause) => {
    expect(classifyError(err(code), 'connect').cause).toBe(cause);
  });

  it('keeps the errno number of a system error', () => {
    expect(classifyError(err('ECONNREFUSED', 'connect ECONNREFUSED', -111), 'connect').errno).toBe(-111);
  });

  it.each([
    ['CERT_HAS_EXPIRED', 'certificate has expired', 'tls_certificate_error'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate', 'tls_certificate_error'],
    [
      'ERR_TLS_CERT_ALTNAME_INVALID',
      "Hostname/IP does not match certificate's altnames",
      'tls_certificate_error',
    ],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number', 'tls_protocol_error'],
    [
      'ECONNRESET',
      'Client network socket disconnected before secure TLS connection was established',
      'connection_terminated',
    ],
  ] as const)('maps TLS-phase %s to %s', (code, message, cause) => {
    expect(classifyError(err(code, message), 'tls').cause).toBe(cause);
  });

  it('reads the alert number of a TLS alert into alertId', () => {
    const c = classifyError(
      err('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'tlsv1 alert protocol version:...:SSL alert number 70'),
      'tls',
    );
    expect(c).toMatchObject({ cause: 'tls_alert_received', alertId: 70 });
  });

  it('tells a reset before the response (connection_terminated) from one during it (http_response_incomplete)', () => {
    expect(classifyError(err('ECONNRESET'), 'request').cause).toBe('connection_terminated');
    expect(classifyError(err('ECONNRESET'), 'response').cause).toBe('http_response_incomplete');
    expect(classifyError(err('UND_ERR_SOCKET', 'other side closed'), 'request').cause).toBe(
      'connection_terminated',
    );
  });

  it('maps the response timer and parser errors after the request was sent', () => {
    expect(classifyError(err(RESPONSE_TIMEOUT), 'request').cause).toBe('http_response_timeout');
    const parser = Object.assign(new Error('Expected HTTP/'), {
      name: 'HTTPParserError',
      code: 'HPE_INVALID_CONSTANT',
    });
    expect(classifyError(parser, 'request').cause).toBe('http_protocol_error');
  });

  it('classifies any error in any phase into a known cause (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.constantFrom(...PHASES), (code, message, phase) => {
        const c = classifyError(err(code, message), phase);
        expect(CAUSE_NAMES).toContain(c.cause);
      }),
    );
  });
});

describe('statusFor', () => {
  it('answers 531 for every connection phase and 536 after the request was sent, under the Uniform profile', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CAUSE_NAMES.filter((c) => c !== 'proxy_internal_error')),
        fc.constantFrom(...PHASES),
        (cause, phase) => {
          const status = statusFor({ cause, phase }, 'Uniform');
          const connect = phase === 'dns' || phase === 'connect' || phase === 'tls';
          const special = cause === 'proxy_loop_detected' || cause === 'destination_unavailable';
          expect(status).toBe(connect || special ? 531 : 536);
        },
      ),
    );
  });

  it('splits DNS, TLS and loops out under the Edgio profile', () => {
    expect(statusFor({ cause: 'dns_error', phase: 'dns' }, 'Edgio')).toBe(537);
    expect(statusFor({ cause: 'dns_timeout', phase: 'dns' }, 'Edgio')).toBe(537);
    expect(statusFor({ cause: 'tls_certificate_error', phase: 'tls' }, 'Edgio')).toBe(533);
    expect(statusFor({ cause: 'proxy_loop_detected', phase: 'request' }, 'Edgio')).toBe(538);
    expect(statusFor({ cause: 'connection_refused', phase: 'connect' }, 'Edgio')).toBe(531);
    expect(statusFor({ cause: 'http_response_timeout', phase: 'request' }, 'Edgio')).toBe(536);
  });

  it('decides by phase, not by code: the same reset is 531 in the TLS handshake and 536 after sending', () => {
    expect(statusFor({ cause: 'connection_terminated', phase: 'tls' }, 'Uniform')).toBe(531);
    expect(statusFor({ cause: 'connection_terminated', phase: 'request' }, 'Uniform')).toBe(536);
  });
});

describe('connectFailure', () => {
  const attempt = (cause: Attempt['cause'], address: string): Attempt => ({
    cause,
    phase: 'connect',
    code: 'X',
    address,
    port: 80,
    target: 0,
    elapsedMs: 1,
    message: '',
  });

  it('reports the most frequent cause, ties to the first address, and keeps every attempt', () => {
    const attempts = [
      attempt('connection_timeout', 'a'),
      attempt('connection_refused', 'b'),
      attempt('connection_refused', 'c'),
    ];
    const f = connectFailure(attempts, 10);
    expect(f.cause).toBe('connection_refused');
    expect(f.address).toBe('b');
    expect(f.attempts).toHaveLength(3);
    expect(
      dominantAttempt([attempt('connection_timeout', 'a'), attempt('connection_refused', 'b')])?.address,
    ).toBe('a');
  });
});
