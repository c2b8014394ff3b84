// spec.healthCheck: the active checks every sidecar of an Origin runs, so that an
// origin nobody calls still shows its health and its cause, and an ejected origin
// comes back without a user's request being spent on it. The schema (source of
// the CRD and of standalone validation) and the pure reading of it: intervals in
// ms, the statuses a path must answer.
import { type Static, Type } from '@sinclair/typebox';
import { parseDuration } from './duration.ts';
import { celIsDuration, duration, durationBetween, withRules } from './rules.ts';

/** Statuses a health path must answer when expectedStatuses is not set. */
export const DEFAULT_EXPECTED_STATUSES = ['200-399'] as const;

const STATUS_PATTERN = '^[1-5][0-9]{2}(-[1-5][0-9]{2})?$';

export const HealthCheck = Type.Object(
  {
    enabled: Type.Boolean({
      description:
        'Run active checks from every sidecar of the Origin. Each check connects as traffic does (DNS, TCP, TLS) and, with a path, sends one GET. Load on the origin: pods × Origins ÷ interval checks per second, fewer while traffic flows (a check is skipped when a request reached the origin within the interval).',
      default: true,
    }),
    interval: duration(
      'Time between two checks of one sidecar, each jittered by up to 10 %. While the origin is ejected, checks run when each ejection interval ends instead, and decide recovery.',
      '10s',
    ),
    timeout: duration(
      'Longest one check waits at each step: to connect to an address (DNS, TCP and TLS; never longer than timeouts.connect) and, with a path, for the response head (never longer than timeouts.response). Must not exceed interval.',
      '5s',
    ),
    unhealthyThreshold: Type.Integer({
      description:
        'Failed checks in a row that make a reachable origin Unreachable. From Unknown (nothing seen yet) the first check decides.',
      minimum: 1,
      maximum: 10,
      default: 2,
    }),
    healthyThreshold: Type.Integer({
      description:
        'Successful checks in a row that make an unreachable origin Reachable again and end its ejection.',
      minimum: 1,
      maximum: 10,
      default: 1,
    }),
    path: Type.Optional(
      Type.String({
        description:
          'HTTP path to GET, with the Host header the sidecar sends. Without a path a check only connects (DNS, TCP, TLS), as traffic does before it sends a request; with one it also waits for the response head and checks its status.',
        pattern: '^/[!-~]*$',
        maxLength: 1024,
      }),
    ),
    expectedStatuses: Type.Optional(
      Type.Array(Type.String({ pattern: STATUS_PATTERN, maxLength: 7 }), {
        description:
          'Statuses the path must answer: codes (204) or ranges (200-399), both ends included. Default 200-399. Another status makes the check fail with destination_unavailable.',
        maxItems: 16,
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Active health checks from each sidecar. Their results feed the same health, metrics, reports and Origin status as traffic, marked with their source.',
    default: {},
  },
);
withRules(HealthCheck, [
  durationBetween('interval', '200ms', '1h'),
  durationBetween('timeout', '10ms', '1h'),
  {
    rule: `!(${celIsDuration('interval')} && ${celIsDuration('timeout')}) || duration(self.timeout) <= duration(self.interval)`,
    message: 'timeout must not exceed interval',
    fieldPath: '.timeout',
    check: (h: { interval: string; timeout: string }) =>
      !(parseDuration(h.timeout) > parseDuration(h.interval)),
  },
  {
    rule: '!has(self.expectedStatuses) || has(self.path)',
    message: 'expectedStatuses needs a path: without one a check only connects',
    fieldPath: '.expectedStatuses',
    check: (h: { path?: string; expectedStatuses?: string[] }) =>
      h.expectedStatuses === undefined || h.path !== undefined,
  },
  {
    // Both ends have three digits, so comparing them as strings compares the numbers.
    rule: `!has(self.expectedStatuses) || self.expectedStatuses.all(s, !s.matches(r'${STATUS_PATTERN}') || size(s) == 3 || s.substring(0, 3) <= s.substring(4, 7))`,
    message: 'a status range must go from low to high, e.g. 200-399',
    fieldPath: '.expectedStatuses',
    check: (h: { expectedStatuses?: string[] }) =>
      (h.expectedStatuses ?? []).every((s) => {
        const [lo, hi] = s.split('-');
        return hi === undefined || Number(lo) <= Number(hi);
      }),
  },
]);

export type HealthCheck = Static<typeof HealthCheck>;

/** A range of statuses, both ends included. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
}

/** "204" and "200-399" as ranges; malformed entries (which validation refuses) are dropped. */
export function statusRanges(expected: readonly string[] | undefined): StatusRange[] {
  return (expected ?? DEFAULT_EXPECTED_STATUSES).flatMap((s) => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(s);
    if (m === null) return [];
    const from = Number(m[1]);
    return [{ from, to: m[2] === undefined ? from : Number(m[2]) }];
  });
}

export const statusExpected = (status: number, ranges: readonly StatusRange[]): boolean =>
  ranges.some((r) => status >= r.from && status <= r.to);

/** The ranges as people read them: "200-399, 418". */
export const describeRanges = (ranges: readonly StatusRange[]): string =>
  ranges.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(', ');

/** A health check's settings in ms, with its timeouts capped by the Origin's own. */
export interface CheckSettings {
  readonly intervalMs: number;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly path: string | undefined;
  readonly expected: readonly StatusRange[];
}

/** What the checks of a spec do, or undefined when they are off. Pure. */
export function checkSettings(spec: {
  readonly healthCheck?: HealthCheck | undefined;
  readonly timeouts: { readonly connect: string; readonly response: string };
}): CheckSettings | undefined {
  const h = spec.healthCheck;
  if (h === undefined || !h.enabled) return undefined;
  const timeout = parseDuration(h.timeout);
  return {
    intervalMs: parseDuration(h.interval),
    connectTimeoutMs: Math.min(timeout, parseDuration(spec.timeouts.connect)),
    responseTimeoutMs: Math.min(timeout, parseDuration(spec.timeouts.response)),
    healthyThreshold: h.healthyThreshold,
    unhealthyThreshold: h.unhealthyThreshold,
    path: h.path,
    expected: statusRanges(h.expectedStatuses),
  };
}
