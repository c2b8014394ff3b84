// Whether a newly aggregated status differs in substance from the one written:
// the status read back from the API server must compare equal to the one the
// operator wrote, so unchanged statuses are never written again.
import type { Condition, OriginStatus } from '../api/status.ts';
import { RFC3339 } from '../kube/time.ts';

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A form in which equal statuses are equal JSON: keys sorted, undefined dropped, times as instants, conditions by type. */
function canonical(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => canonical(v));
    if (key !== 'conditions') return items;
    return items.sort((a, b) => byName(String((a as Condition).type), String((b as Condition).type)));
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return Object.fromEntries(entries.sort(([a], [b]) => byName(a, b)).map(([k, v]) => [k, canonical(v, k)]));
  }
  return typeof value === 'string' && RFC3339.test(value) ? Date.parse(value) : value;
}

/**
 * Whether `b` differs from `a` in substance. Key order, absent vs undefined fields,
 * the order of conditions and the spelling of a timestamp are not changes: the
 * status read back from the API server must compare equal to the one written.
 */
export function statusChanged(a: OriginStatus | undefined, b: OriginStatus | undefined): boolean {
  return JSON.stringify(canonical(a ?? {})) !== JSON.stringify(canonical(b ?? {}));
}
