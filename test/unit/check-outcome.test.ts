// What a running component keeps of a diagnosis: the check's result in the
// sidecar's own failure shape, and the operator's answer shown and exited on.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Cause } from '../../src/api/causes.ts';
import { statusRanges } from '../../src/api/health-check.ts';
import type { OperatorProbe } from '../../src/api/triangulation.ts';
import { checkOutcome } from '../../src/diagnose/check.ts';
import { diagnosisOf, EXIT } from '../../src/diagnose/diagnosis.ts';
import { UNEXPECTED_STATUS } from '../../src/diagnose/errors.ts';
import {
  exitCodeOfAnswer,
  type OperatorAnswer,
  renderOperatorAnswer,
} from '../../src/diagnose/from-operator.ts';
import { parseTarget, planForAddress } from '../../src/diagnose/plan.ts';
import { PLAIN } from '../../src/diagnose/render.ts';
import type { Step } from '../../src/diagnose/schema.ts';
import { connectFailure } from '../../src/upstream/classify.ts';
import { RESPONSE_TIMEOUT } from '../../src/upstream/errors.ts';

const plan = planForAddress('shop.example:80', parseTarget('shop.example:80'), {});
const vantage = { inCluster: true, fromCluster: false, sidecars: null, notes: [] };
const resolved: Step = {
  phase: 'dns',
  target: 0,
  address: null,
  ok: true,
  cause: null,
  failedIn: null,
  code: null,
  elapsedMs: 1,
  detail: 'as the sidecar resolves it: 10.0.0.1, 10.0.0.2',
};
const tcp = (address: string, cause: Cause | null): Step => ({
  phase: 'tcp',
  target: 0,
  address,
  ok: cause === null,
  cause,
  failedIn: cause === null ? null : 'connect',
  code: cause === null ? null : 'ECONNREFUSED',
  elapsedMs: 2,
  detail: cause ?? 'connected',
});
const http = (status: number | null, cause: Cause | null = null): Step => ({
  phase: 'http',
  target: 0,
  address: '10.0.0.1:80',
  ok: cause === null,
  cause,
  failedIn: cause === null ? null : 'request',
  code: cause === null ? null : RESPONSE_TIMEOUT,
  elapsedMs: 5,
  detail: status === null ? 'no answer' : `${status}`,
  http: {
    method: 'GET',
    path: '/healthz',
    host: 'shop.example',
    status,
    ttfbMs: 1,
    bytes: 0,
    truncated: false,
  },
});
const outcome = (steps: Step[], expected?: string[]) =>
  checkOutcome(
    plan,
    diagnosisOf(plan, steps, vantage, new Date(), 7),
    expected === undefined ? undefined : statusRanges(expected),
  );

describe('checkOutcome', () => {
  it('fails with the cause and attempts a request would have failed with (property)', () => {
    const causes: Cause[] = [
      'connection_refused',
      'connection_timeout',
      'destination_ip_unroutable',
      'connection_terminated',
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...causes), { minLength: 1, maxLength: 5 }), (list) => {
        const steps = [resolved, ...list.map((c, i) => tcp(`10.0.0.${i + 1}:80`, c))];
        const o = outcome(steps);
        const sidecar = connectFailure(
          list.map((cause, i) => ({
            cause,
            phase: 'connect',
            code: 'ECONNREFUSED',
            address: `10.0.0.${i + 1}`,
            port: 80,
            target: 0,
            elapsedMs: 2,
            message: cause,
          })),
          7,
        );
        expect(o.ok).toBe(false);
        expect(o.failure).toMatchObject({ cause: sidecar.cause, address: sidecar.address, phase: 'connect' });
        expect(o.failure?.attempts.map((a) => `${a.address}:${a.port}`)).toEqual(
          list.map((_, i) => `10.0.0.${i + 1}:80`),
        );
        expect(o.statusCode).toBe(531);
        expect(o.addresses.every((a) => !a.ok)).toBe(true);
      }),
    );
  });

  it('passes a connect-only check when one address connects, and reports each address', () => {
    const o = outcome([resolved, tcp('10.0.0.1:80', 'connection_timeout'), tcp('10.0.0.2:80', null)]);
    expect(o).toMatchObject({ ok: true, summary: '10.0.0.2:80 accepts connections (TCP in 2 ms)' });
    expect(o.addresses).toEqual([
      { address: '10.0.0.1', family: 4, port: 80, ok: false, cause: 'connection_timeout' },
      { address: '10.0.0.2', family: 4, port: 80, ok: true },
    ]);
    expect(o.steps).toHaveLength(3);
  });

  it('fails a path check whose status is not expected, with destination_unavailable, and passes an expected one', () => {
    const bad = outcome([resolved, tcp('10.0.0.1:80', null), http(503)], ['200-299']);
    expect(bad).toMatchObject({
      ok: false,
      httpStatus: 503,
      statusCode: 531,
      summary: 'GET /healthz answered 503, expected 200-299',
      failure: {
        cause: 'destination_unavailable',
        phase: 'response',
        code: UNEXPECTED_STATUS,
        address: '10.0.0.1',
      },
    });
    expect(outcome([resolved, tcp('10.0.0.1:80', null), http(204)], ['204'])).toMatchObject({
      ok: true,
      httpStatus: 204,
    });
  });

  it('fails a path check the origin does not answer in time as a 536', () => {
    const o = outcome([resolved, tcp('10.0.0.1:80', null), http(null, 'http_response_timeout')], ['200-399']);
    expect(o).toMatchObject({
      ok: false,
      statusCode: 536,
      failure: { cause: 'http_response_timeout', phase: 'request' },
    });
  });
});

const answer = (probe: Partial<OperatorProbe>): OperatorAnswer => ({
  apiVersion: 'diagnose.originguard.dev/v1',
  kind: 'OperatorProbe',
  origin: { namespace: 'shop', name: 'shop' },
  probe: {
    from: 'op-0',
    time: '2026-11-29T12:00:00Z',
    reason: 'Requested',
    result: 'Reachable',
    summary: 'ok',
    steps: [],
    ...probe,
  },
  triangulation: null,
});

describe("the operator's answer", () => {
  it('exits 0 when the operator reaches the origin, with the class code of its cause when not, 87 when it did not probe', () => {
    expect(exitCodeOfAnswer(answer({}))).toBe(EXIT.reachable);
    expect(
      exitCodeOfAnswer(answer({ result: 'Unreachable', cause: 'connection_timeout', statusCode: 531 })),
    ).toBe(EXIT.connectTimeout);
    expect(
      exitCodeOfAnswer(answer({ result: 'Unreachable', cause: 'connection_terminated', statusCode: 536 })),
    ).toBe(EXIT.response);
    expect(
      exitCodeOfAnswer(answer({ result: 'NotProbed', summary: 'namespace shop has not opted in' })),
    ).toBe(EXIT.inconclusive);
  });

  it('shows where it ran from, when, the verdict, each step, and where the failure is', () => {
    const a = {
      ...answer({
        result: 'Unreachable',
        cause: 'connection_refused',
        summary: '10.0.0.5:80 refuses connections',
        steps: ['tcp 10.0.0.5:80: refused (ECONNREFUSED) (1 ms)'],
      }),
      triangulation: {
        scope: 'Origin' as const,
        summary: 'All 3 pods fail and so does the operator.',
        reasoning: ['3 pods report: 3 fail, 0 reach the origin'],
      },
    };
    expect(renderOperatorAnswer(a, Date.parse('2026-11-29T12:00:30Z'), PLAIN)).toEqual([
      'Origin shop/shop, seen from the operator (op-0, 30s ago)',
      '  Scope: Origin: All 3 pods fail and so does the operator.',
      '    - 3 pods report: 3 fail, 0 reach the origin',
      '  Operator probe: Unreachable connection_refused from op-0, 30s ago (Requested): 10.0.0.5:80 refuses connections',
      '    tcp 10.0.0.5:80: refused (ECONNREFUSED) (1 ms)',
    ]);
  });
});
