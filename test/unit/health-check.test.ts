import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSettings, statusExpected, statusRanges } from '../../src/api/health-check.ts';
import { OriginHealth } from '../../src/sidecar/health.ts';
import { checkTransition, JITTER, jittered } from '../../src/sidecar/health-check.ts';
import { OutlierDetector } from '../../src/sidecar/outlier.ts';
import { AddressBook } from '../../src/upstream/address-book.ts';
import type { Failure } from '../../src/upstream/failure.ts';

const thresholds = { healthyThreshold: 2, unhealthyThreshold: 3 };
const refused: Failure = {
  cause: 'connection_refused',
  phase: 'connect',
  code: 'ECONNREFUSED',
  address: '10.0.0.5',
  attempts: [
    {
      cause: 'connection_refused',
      phase: 'connect',
      code: 'ECONNREFUSED',
      address: '10.0.0.5',
      port: 80,
      target: 0,
      elapsedMs: 1,
      message: '',
    },
  ],
  elapsedMs: 1,
};
const unavailable: Failure = {
  ...refused,
  cause: 'destination_unavailable',
  phase: 'response',
  attempts: [],
};

describe('checkTransition', () => {
  it('lets the first check decide from Unknown, either way', () => {
    expect(checkTransition('Unknown', true, 1, thresholds)).toBe('Reachable');
    expect(checkTransition('Unknown', false, 1, thresholds)).toBe('Unreachable');
  });

  it('needs unhealthyThreshold failures in a row to make a reachable origin Unreachable', () => {
    expect(checkTransition('Reachable', false, 2, thresholds)).toBeUndefined();
    expect(checkTransition('Reachable', false, 3, thresholds)).toBe('Unreachable');
    expect(checkTransition('Reachable', true, 5, thresholds)).toBeUndefined();
  });

  it('needs healthyThreshold successes in a row to make an unreachable origin Reachable', () => {
    expect(checkTransition('Unreachable', true, 1, thresholds)).toBeUndefined();
    expect(checkTransition('Unreachable', true, 2, thresholds)).toBe('Reachable');
    // Still failing: still Unreachable (its cause may change).
    expect(checkTransition('Unreachable', false, 1, thresholds)).toBe('Unreachable');
  });

  it('never moves against the result: a success never makes it Unreachable, a failure never Reachable (property)', () => {
    const state = fc.constantFrom('Unknown', 'Reachable', 'Unreachable') as fc.Arbitrary<
      'Unknown' | 'Reachable' | 'Unreachable'
    >;
    fc.assert(
      fc.property(
        state,
        fc.boolean(),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        (s, ok, n, h, u) => {
          const next = checkTransition(s, ok, n, { healthyThreshold: h, unhealthyThreshold: u });
          expect(next).not.toBe(ok ? 'Unreachable' : 'Reachable');
        },
      ),
    );
  });

  it('spreads checks over ±10 % of the interval', () => {
    expect(jittered(10_000, () => 0)).toBe(10_000 * (1 - JITTER));
    expect(jittered(10_000, () => 0.5)).toBe(10_000);
    expect(jittered(10_000, () => 0.999999)).toBeCloseTo(10_000 * (1 + JITTER), 0);
  });
});

describe("a check's settings", () => {
  it("caps the check's timeout by the Origin's own, and is off when disabled", () => {
    const spec = (h: Record<string, unknown>, connect = '5s') => ({
      healthCheck: {
        enabled: true,
        interval: '10s',
        timeout: '2s',
        healthyThreshold: 1,
        unhealthyThreshold: 2,
        ...h,
      },
      timeouts: { connect, response: '60s' },
    });
    expect(checkSettings(spec({}))).toMatchObject({
      intervalMs: 10_000,
      connectTimeoutMs: 2000,
      responseTimeoutMs: 2000,
      path: undefined,
    });
    expect(checkSettings(spec({}, '300ms'))?.connectTimeoutMs).toBe(300);
    expect(checkSettings(spec({ enabled: false }))).toBeUndefined();
  });

  it('reads expected statuses as codes and ranges, 200-399 by default', () => {
    expect(statusRanges(undefined)).toEqual([{ from: 200, to: 399 }]);
    const r = statusRanges(['204', '300-302']);
    expect([204, 300, 302].map((s) => statusExpected(s, r))).toEqual([true, true, true]);
    expect([200, 303, 503].map((s) => statusExpected(s, r))).toEqual([false, false, false]);
  });
});

describe('OriginHealth with checks', () => {
  it('marks what set the state, and counts checks apart from requests', () => {
    const h = new OriginHealth('shop/shop');
    h.onCheck({ ok: false, failure: refused, statusCode: 531, decision: 'Unreachable', summary: 'refused' });
    expect(h.snapshot()).toMatchObject({
      state: 'Unreachable',
      source: 'Probe',
      requests: 0,
      failures: 0,
      check: { checks: 1, failures: 1, consecutive: 1 },
    });
    h.onReachable();
    expect(h.snapshot()).toMatchObject({ state: 'Reachable', source: 'Traffic' });
  });

  it('keeps a failure below the threshold as the last failure without changing the state', () => {
    const h = new OriginHealth('shop/shop');
    h.onReachable();
    h.onCheck({ ok: false, failure: refused, statusCode: 531, decision: undefined, summary: 'refused' });
    expect(h.snapshot()).toMatchObject({
      state: 'Reachable',
      lastFailure: { cause: 'connection_refused', source: 'Probe' },
    });
  });

  it('stays Unreachable after an unexpected health status until a check passes, whatever requests get', () => {
    const h = new OriginHealth('shop/shop');
    h.onCheck({
      ok: false,
      failure: unavailable,
      statusCode: 531,
      decision: 'Unreachable',
      summary: 'GET /healthz answered 503',
    });
    h.onReachable();
    expect(h.state).toBe('Unreachable');
    h.onCheck({ ok: true, decision: 'Reachable', summary: 'ok' });
    expect(h.snapshot()).toMatchObject({ state: 'Reachable', source: 'Probe' });
  });
});

describe('ejection decided by checks', () => {
  it('admits no trial while checks decide, until a grace past the ejection end', () => {
    let now = 0;
    const d = new OutlierDetector(
      { consecutiveFailures: 1, baseEjectionMs: 1000, maxEjectionMs: 5000 },
      () => now,
    );
    d.checkedBy(3000);
    d.onCheckFailure('connection_timeout');
    expect(d.ejected).toBe(true);
    now = 1500;
    expect(d.admit().kind).toBe('reject');
    now = 4100;
    expect(d.admit().kind).toBe('trial');
    d.onSuccess();
    expect(d.admit().kind).toBe('pass');
  });

  it('gives a failed address its place back when a check reaches it, without preferring it', () => {
    const book = new AddressBook();
    const a = { address: '10.0.0.1', family: 4 as const, port: 80 };
    const b = { address: '10.0.0.2', family: 4 as const, port: 80 };
    book.connected(b);
    book.failed(a, 'connection_timeout');
    expect(book.order([a, b]).map((c) => c.address)).toEqual(['10.0.0.2', '10.0.0.1']);
    book.reachable(a);
    expect(book.order([a, b]).map((c) => c.address)).toEqual(['10.0.0.2', '10.0.0.1']);
    expect(book.records().find((r) => r.address === '10.0.0.1')?.state).toBe('connected');
    book.failed(b, 'connection_refused');
    expect(book.order([a, b]).map((c) => c.address)).toEqual(['10.0.0.1', '10.0.0.2']);
  });
});
