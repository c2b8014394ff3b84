import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutlierDetector } from '../../src/sidecar/outlier.ts';

function detector(consecutiveFailures = 3, baseEjectionMs = 1000, maxEjectionMs = 5000) {
  let now = 0;
  const d = new OutlierDetector({ consecutiveFailures, baseEjectionMs, maxEjectionMs }, () => now);
  return { d, advance: (ms: number) => (now += ms) };
}

describe('OutlierDetector', () => {
  it('passes requests until the configured number of consecutive connection failures', () => {
    const { d } = detector(3);
    expect(d.onConnectFailure(false, 'connection_refused')).toBe(false);
    expect(d.onConnectFailure(false, 'connection_refused')).toBe(false);
    expect(d.admit().kind).toBe('pass');
    expect(d.onConnectFailure(false, 'connection_refused')).toBe(true);
    expect(d.admit()).toMatchObject({ kind: 'reject', retryInMs: 1000 });
  });

  it('lets exactly one trial through when the ejection interval is over', () => {
    const { d, advance } = detector(1);
    d.onConnectFailure(false, 'connection_refused');
    advance(1000);
    expect(d.admit().kind).toBe('trial');
    expect(d.admit().kind).toBe('reject');
  });

  it('grows the interval with each failed trial, up to the maximum', () => {
    const { d, advance } = detector(1, 1000, 2500);
    d.onConnectFailure(false, 'connection_refused');
    const intervals: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = d.admit();
      intervals.push(r.kind === 'reject' ? r.retryInMs : 0);
      advance(10_000);
      expect(d.admit().kind).toBe('trial');
      d.onConnectFailure(true, 'connection_refused');
    }
    expect(intervals).toEqual([1000, 2000, 2500, 2500]);
  });

  it('does not extend the ejection for requests that were admitted before it and fail after', () => {
    const { d } = detector(1, 1000, 30_000);
    d.onConnectFailure(false, 'connection_refused');
    for (let i = 0; i < 50; i++) d.onConnectFailure(false, 'connection_refused');
    expect(d.admit()).toMatchObject({ kind: 'reject', retryInMs: 1000 });
  });

  it('returns to passing after a successful connection', () => {
    const { d, advance } = detector(1);
    d.onConnectFailure(false, 'connection_refused');
    advance(1000);
    expect(d.admit().kind).toBe('trial');
    d.onSuccess();
    expect(d.admit().kind).toBe('pass');
    expect(d.ejected).toBe(false);
  });

  it('lets another probe through when a trial was abandoned by its client', () => {
    const { d, advance } = detector(1);
    d.onConnectFailure(false, 'connection_refused');
    advance(1000);
    expect(d.admit().kind).toBe('trial');
    d.onTrialAbandoned();
    expect(d.admit().kind).toBe('trial');
  });

  it('never admits more than one trial at a time, whatever the sequence (property)', () => {
    const op = fc.constantFrom('admit', 'fail', 'success', 'advance');
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const { d, advance } = detector(2, 100, 1000);
        let trials = 0;
        for (const o of ops) {
          if (o === 'admit' && d.admit().kind === 'trial') trials++;
          if (o === 'fail') {
            d.onConnectFailure(trials > 0, 'connection_refused');
            trials = 0;
          }
          if (o === 'success') {
            d.onSuccess();
            trials = 0;
          }
          if (o === 'advance') advance(500);
          expect(trials).toBeLessThanOrEqual(1);
        }
      }),
    );
  });
});
