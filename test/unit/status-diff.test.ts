import { describe, expect, it } from 'vitest';
import { statusChanged } from '../../src/operator/status-diff.ts';
import { aggregate, pod, report } from '../support/aggregate-fixtures.ts';

describe('statusChanged', () => {
  const base = aggregate([pod('a')], [report('a', 'Unreachable', 'connection_refused')]);

  it('ignores key order, condition order, undefined fields and how a time is spelled', () => {
    const shuffled = JSON.parse(
      JSON.stringify({ ...base, conditions: [...(base.conditions ?? [])].reverse() }),
    );
    shuffled.conditions[0].lastTransitionTime = '2026-11-23T19:00:00.000Z';
    shuffled.notInjected = undefined;
    expect(statusChanged(base, shuffled)).toBe(false);
    expect(statusChanged(undefined, undefined)).toBe(false);
  });

  it('sees a changed count, condition, cause or a new field', () => {
    expect(statusChanged(base, { ...base, podsSummary: '1/1' })).toBe(true);
    expect(statusChanged(base, { ...base, cause: 'dns_error' })).toBe(true);
    const { lastFailure: _, ...without } = base;
    expect(statusChanged(base, without)).toBe(true);
    expect(statusChanged(undefined, base)).toBe(true);
  });
});
