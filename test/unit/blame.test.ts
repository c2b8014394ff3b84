import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES } from '../../src/api/causes.ts';
import { clientFault, isOriginFailure } from '../../src/sidecar/blame.ts';
import { BodyTooLargeError, ClientBodyError, ClientGoneError } from '../../src/sidecar/errors.ts';

describe('whose doing a failed request is', () => {
  it('is the client’s when it left or broke off its body, whatever the phase', () => {
    for (const phase of ['connect', 'request', 'response'] as const) {
      expect(clientFault(new ClientGoneError(), phase, false)).toEqual({ kind: 'gone' });
      expect(clientFault(new ClientBodyError(), phase, false)).toEqual({ kind: 'gone' });
      // Once the client is gone, whatever undici reports next is not the origin's either.
      expect(
        clientFault(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), phase, true),
      ).toEqual({
        kind: 'gone',
      });
    }
  });

  it('answers 413 to a body over the limit', () => {
    expect(clientFault(new BodyTooLargeError(10), 'request', false)).toMatchObject({
      status: 413,
      reason: 'body_too_large',
    });
  });

  it('answers 400 to a request undici refuses to send (OPTIONS * used to count as an origin failure)', () => {
    const refused = new errors.InvalidArgumentError('path must be an absolute URL or start with a slash');
    expect(clientFault(refused, 'connect', false)).toMatchObject({ status: 400, reason: 'invalid_request' });
    expect(
      clientFault(new errors.NotSupportedError('expect header not supported'), 'connect', false),
    ).toMatchObject({
      status: 400,
    });
    expect(clientFault(new errors.RequestContentLengthMismatchError(), 'request', false)).toMatchObject({
      status: 400,
    });
  });

  it('leaves everything else to the origin’s classification', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(clientFault(reset, 'request', false)).toBeUndefined();
    expect(clientFault(new errors.HeadersOverflowError(), 'request', false)).toBeUndefined();
    expect(clientFault(new errors.InvalidArgumentError('x'), 'response', false)).toBeUndefined();
  });

  it('keeps loops and the sidecar’s own errors out of the origin’s health', () => {
    const notOrigin = CAUSE_NAMES.filter((c) => !isOriginFailure(c));
    expect(notOrigin.sort()).toEqual(['proxy_internal_error', 'proxy_loop_detected']);
  });
});
