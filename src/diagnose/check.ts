// What a running component keeps of one diagnosis: a sidecar's health check and
// the operator's probe need a result, not a report. Pure: the verdict says
// whether the origin would carry traffic; the failure is rebuilt in the
// sidecar's own shape (its attempts in its order, its dominant cause), so a
// check's failure reads exactly like a request's; a health path answering an
// unexpected status fails the check with destination_unavailable (RFC 9209:
// "a health check may indicate that it is down").
import type { Cause, Phase } from '../api/causes.ts';
import { describeRanges, type StatusRange, statusExpected } from '../api/health-check.ts';
import { connectFailure, statusFor } from '../upstream/classify.ts';
import type { Attempt, Failure } from '../upstream/failure.ts';
import { UNEXPECTED_STATUS } from './errors.ts';
import { evidenceLine } from './explain.ts';
import type { Plan } from './plan.ts';
import type { Diagnosis, Step } from './schema.ts';
import { sidecarPath } from './verdict.ts';

/** One address's outcome in a check, for the address book. */
export interface AddressOutcome {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly ok: boolean;
  readonly cause?: string;
}

export interface CheckOutcome {
  /** The origin would carry traffic (and, with a path, answered an expected status). */
  readonly ok: boolean;
  /** Why not, in the sidecar's shape; undefined when ok. */
  readonly failure?: Failure;
  /** What a request would have been answered: 531/536 (profile applied) when it fails. */
  readonly statusCode?: number;
  /** The origin's own status, when a path was asked. */
  readonly httpStatus?: number;
  /** The verdict in one line. */
  readonly summary: string;
  /** One line per step, as `originguard diagnose` prints its evidence. */
  readonly steps: readonly string[];
  /** Each address connected to (or not), TLS included. */
  readonly addresses: readonly AddressOutcome[];
  readonly elapsedMs: number;
}

/** "10.0.0.5:80" or "[fd00::1]:80" back into its parts. */
function splitHostPort(text: string): { address: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(text);
  return m === null ? { address: text, port: 0 } : { address: m[1] as string, port: Number(m[2]) };
}

/** A failed step as the connector's attempt: its address, port and classified cause. */
function attemptOf(step: Step, plan: Plan): Attempt {
  const target = plan.targets[step.target];
  const where =
    step.phase === 'dns'
      ? { address: target?.host ?? '', port: target?.port ?? 0 }
      : splitHostPort(step.address ?? '');
  return {
    cause: (step.cause ?? 'proxy_internal_error') as Cause,
    phase: (step.failedIn ?? 'connect') as Phase,
    code: step.code ?? '',
    ...(step.rcode === undefined ? {} : { rcode: step.rcode }),
    ...(step.alertId === undefined ? {} : { alertId: step.alertId }),
    address: where.address,
    port: where.port,
    target: step.target,
    elapsedMs: step.elapsedMs,
    message: step.detail,
  };
}

/** The connection-level outcome of every address probed: TCP, then TLS where it applies. */
function addressOutcomes(plan: Plan, steps: readonly Step[]): AddressOutcome[] {
  return steps
    .filter((s) => s.phase === 'tcp' && s.address !== null)
    .map((tcp) => {
      const tls = steps.find(
        (s) => s.phase === 'tls' && s.target === tcp.target && s.address === tcp.address,
      );
      const last = tls ?? tcp;
      const { address, port } = splitHostPort(tcp.address ?? '');
      return {
        address,
        family: address.includes(':') ? (6 as const) : (4 as const),
        port: port || (plan.targets[tcp.target]?.port ?? 0),
        ok: last.ok,
        ...(last.cause === null ? {} : { cause: last.cause }),
      };
    });
}

function httpFailure(http: Step, plan: Plan): Failure {
  const { address, port } = splitHostPort(http.address ?? '');
  const attempt = { ...attemptOf(http, plan), address, port };
  return {
    cause: attempt.cause,
    phase: attempt.phase,
    code: attempt.code,
    address,
    attempts: [attempt],
    elapsedMs: http.elapsedMs,
  };
}

function unexpected(http: Step, status: number, expected: readonly StatusRange[]): Failure {
  const { address, port } = splitHostPort(http.address ?? '');
  const message = `GET ${http.http?.path ?? '/'} answered ${status}, expected ${describeRanges(expected)}`;
  return {
    cause: 'destination_unavailable',
    phase: 'response',
    code: UNEXPECTED_STATUS,
    address,
    attempts: [
      {
        cause: 'destination_unavailable',
        phase: 'response',
        code: UNEXPECTED_STATUS,
        address,
        port,
        target: http.target,
        elapsedMs: http.elapsedMs,
        message,
      },
    ],
    elapsedMs: http.elapsedMs,
  };
}

/**
 * The outcome of a diagnosis run as a check. `expected` is given when a path
 * was asked: the origin's status must be one of them.
 */
export function checkOutcome(
  plan: Plan,
  d: Diagnosis,
  expected: readonly StatusRange[] | undefined,
): CheckOutcome {
  const steps = d.steps.map(evidenceLine);
  const addresses = addressOutcomes(plan, d.steps);
  const base = { steps, addresses, elapsedMs: d.elapsedMs };
  const http = d.steps.find((s) => s.phase === 'http');
  const status = http?.http?.status ?? undefined;
  if (d.reachable) {
    if (
      http !== undefined &&
      status !== undefined &&
      expected !== undefined &&
      !statusExpected(status, expected)
    ) {
      const failure = unexpected(http, status, expected);
      return {
        ...base,
        ok: false,
        failure,
        statusCode: statusFor(failure, plan.profile),
        httpStatus: status,
        summary: failure.attempts[0]?.message ?? '',
      };
    }
    return {
      ...base,
      ok: true,
      ...(status === undefined ? {} : { httpStatus: status }),
      summary: d.verdict.summary,
    };
  }
  const failure =
    http !== undefined && !http.ok ? httpFailure(http, plan) : connectionFailure(plan, d.steps, d.elapsedMs);
  return {
    ...base,
    ok: false,
    failure,
    statusCode: statusFor(failure, plan.profile),
    summary: d.verdict.summary,
  };
}

/** Every address failed: the sidecar's failure from its attempts, in its order. */
function connectionFailure(plan: Plan, steps: readonly Step[], elapsedMs: number): Failure {
  const attempts = sidecarPath(plan, steps).attempts.map((s) => attemptOf(s, plan));
  return connectFailure(attempts, elapsedMs);
}
