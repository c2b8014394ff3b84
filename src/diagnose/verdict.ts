// The verdict of a probe, decided from its steps by pure code: the path the
// sidecar would take through them (every address of the upstream, then of each
// backup, up to the first connection), the cause it would report (its own
// dominantAttempt), the status it would answer (its own statusFor), the evidence,
// and what else is wrong without stopping traffic.
import { type Cause, causeDocUrl, type Phase } from '../api/causes.ts';
import { dominantAttempt, statusFor } from '../upstream/classify.ts';
import { CONNECT_STAGGER_MS } from '../upstream/connector.ts';
import type { Attempt } from '../upstream/failure.ts';
import { evidenceLine, explainFailure, type FailureContext } from './explain.ts';
import type { Plan, TargetPlan } from './plan.ts';
import type { Finding, Step, Verdict } from './schema.ts';

/** Where each cause's row in docs/causes.md is. */

/** Certificates closer to their end than this are reported. */
export const EXPIRY_WARNING_DAYS = 14;

export interface ProbeOutcome {
  readonly reachable: boolean;
  readonly verdict: Verdict;
}

/** An address's outcome: its failed TCP or TLS step, or undefined when a connection would carry traffic. */
function addressOutcomes(
  steps: readonly Step[],
  target: number,
  tls: boolean,
): { address: string; failed?: Step; ok?: Step }[] {
  return steps
    .filter((s) => s.phase === 'tcp' && s.target === target)
    .map((tcp) => {
      const address = tcp.address ?? '';
      if (!tcp.ok) return { address, failed: tcp };
      const handshake = tls
        ? steps.find((s) => s.phase === 'tls' && s.target === target && s.address === tcp.address)
        : tcp;
      return handshake?.ok === true
        ? { address, ok: handshake }
        : { address, ...(handshake ? { failed: handshake } : {}) };
    });
}

const sidecarResolution = (steps: readonly Step[], target: number) =>
  steps.find((s) => s.phase === 'dns' && s.target === target && s.address === null);

/** One target's failed attempts, in the sidecar's order: its resolution, then each address. */
function targetAttempts(steps: readonly Step[], index: number, target: TargetPlan): Step[] {
  const dns = sidecarResolution(steps, index);
  const failed = addressOutcomes(steps, index, target.tls !== undefined).flatMap((a) =>
    a.failed === undefined ? [] : [a.failed],
  );
  return [...(dns !== undefined && !dns.ok ? [dns] : []), ...failed];
}

/** The sidecar's path: its failed attempts in order, and the step of the connection that would carry traffic. */
export function sidecarPath(plan: Plan, steps: readonly Step[]): { attempts: Step[]; carrier?: Step } {
  const attempts: Step[] = [];
  for (const [index, target] of plan.targets.entries()) {
    const dns = sidecarResolution(steps, index);
    if (dns !== undefined && !dns.ok) attempts.push(dns);
    for (const a of addressOutcomes(steps, index, target.tls !== undefined)) {
      if (a.ok !== undefined) return { attempts, carrier: a.ok };
      if (a.failed !== undefined) attempts.push(a.failed);
    }
  }
  return { attempts };
}

function asAttempt(s: Step): Attempt {
  return {
    cause: (s.cause ?? 'proxy_internal_error') as Cause,
    phase: (s.failedIn ?? 'connect') as Phase,
    code: s.code ?? '',
    address: s.address ?? '',
    port: 0,
    target: s.target,
    elapsedMs: s.elapsedMs,
    message: s.detail,
  };
}

/** The attempt that speaks for several, as the sidecar picks it: the most frequent cause, the earliest first. */
function dominantStep(attempts: readonly Step[]): Step | undefined {
  const top = dominantAttempt(attempts.map(asAttempt));
  return top === undefined ? undefined : attempts.find((a) => a.cause === top.cause);
}

/** Evidence for a failure: the DNS lines of its target, then the failing steps with its cause. */
function evidenceFor(steps: readonly Step[], failed: Step, same: readonly Step[]): string[] {
  const dns = steps.filter((s) => s.phase === 'dns' && s.target === failed.target);
  const lines = failed.phase === 'dns' ? dns : [...dns.filter((s) => s.address === null), ...same];
  return lines.map(evidenceLine);
}

function failureVerdict(plan: Plan, steps: readonly Step[], failed: Step, same: readonly Step[]): Verdict {
  const ctx: FailureContext = { plan, steps, step: failed, same };
  const { summary, fix } = explainFailure(ctx);
  const cause = failed.cause ?? 'proxy_internal_error';
  const failedIn = (failed.failedIn ?? 'connect') as Phase;
  return {
    cause,
    statusCode: statusFor({ cause: cause as Cause, phase: failedIn }, plan.profile),
    failedIn,
    ...(failed.rcode === undefined ? {} : { rcode: failed.rcode }),
    ...(failed.alertId === undefined ? {} : { alertId: failed.alertId }),
    summary,
    fix,
    evidence: evidenceFor(steps, failed, same),
    docs: causeDocUrl(cause),
    source: 'probe',
    warnings: [],
  };
}

/** How an address failing with each cause reads: [one address, several]. */
const CAUSE_VERBS: Readonly<Record<string, readonly [string, string]>> = {
  connection_refused: ['refuses connections', 'refuse connections'],
  connection_timeout: ['drops connections', 'drop connections'],
  destination_ip_unroutable: ['is unreachable', 'are unreachable'],
  destination_ip_prohibited: ['is prohibited', 'are prohibited'],
  connection_terminated: ['resets connections', 'reset connections'],
  tls_certificate_error: ['fails certificate verification', 'fail certificate verification'],
};

/** Some addresses of one target fail while others work: which, how, and what it costs. */
function partialFinding(
  plan: Plan,
  target: TargetPlan,
  outcomes: readonly { failed?: Step; ok?: Step }[],
): Finding | undefined {
  const failed = outcomes.flatMap((o) => (o.failed === undefined ? [] : [o.failed]));
  const working = outcomes.filter((o) => o.ok !== undefined).length;
  const first = failed[0];
  if (first === undefined || working === 0) return undefined;
  const [one, many] = CAUSE_VERBS[first.cause ?? ''] ?? [`fails (${first.cause})`, `fail (${first.cause})`];
  const verb = failed.length === 1 ? one : many;
  const others = working === 1 ? 'the other answers' : 'the others answer';
  // The connector races the next address after a stagger and then remembers the dead one (address-book.ts).
  const wait =
    outcomes[0]?.failed !== undefined && first.cause === 'connection_timeout'
      ? `; the sidecar tries ${first.address} first, so its first connection waits ${CONNECT_STAGGER_MS} ms before racing the next address, and later ones try it last`
      : '';
  const dead = failed.map((f) => f.address).join(', ');
  const evidence = failed.map(evidenceLine);
  // localhost is 127.0.0.1 and ::1: an origin listening on one family only is common, and harmless when refused.
  if (target.host.toLowerCase() === 'localhost') {
    return {
      cause: first.cause,
      summary: `${dead} ${verb} (${others}): the origin listens on one address family only`,
      fix: `listen on both 127.0.0.1 and ::1, or name the address that works in ${plan.origin === null ? 'TARGET' : 'spec.upstream.host'}${wait}`,
      evidence,
    };
  }
  return {
    cause: first.cause,
    summary: `${failed.length} of ${outcomes.length} addresses of ${target.host} ${verb} (${others}): a stale DNS record or a dead instance`,
    fix: `remove ${dead} from DNS (or spec.upstream.addresses), or bring that instance back${wait}`,
    evidence,
  };
}

function partialAddresses(plan: Plan, steps: readonly Step[]): Finding[] {
  return plan.targets.flatMap((target, index) => {
    const finding = partialFinding(plan, target, addressOutcomes(steps, index, target.tls !== undefined));
    return finding === undefined ? [] : [finding];
  });
}

function targetFindings(plan: Plan, steps: readonly Step[], carrier: Step | undefined): Finding[] {
  const out: Finding[] = [];
  for (const [index, target] of plan.targets.entries()) {
    if (carrier === undefined || index === carrier.target) continue;
    const attempts = targetAttempts(steps, index, target);
    const failed = dominantStep(attempts);
    if (failed === undefined) continue;
    const where = `${target.host}:${target.port}`;
    const carrierTarget = plan.targets[carrier.target] as TargetPlan;
    const { summary, fix } = explainFailure({ plan, steps, step: failed, same: [failed] });
    out.push({
      cause: failed.cause,
      summary:
        index === 0
          ? `the upstream ${where} is unreachable (${failed.cause}): traffic fails over to the backup ${carrierTarget.host}:${carrierTarget.port}; ${summary}`
          : `the backup ${where} is unreachable (${failed.cause}): failing over to it would not help; ${summary}`,
      fix,
      evidence: attempts.map(evidenceLine),
    });
  }
  return out;
}

function dnsServerFindings(steps: readonly Step[]): Finding[] {
  return steps
    .filter(
      (s) =>
        s.phase === 'dns' && s.address !== null && !s.ok && sidecarResolution(steps, s.target)?.ok === true,
    )
    .map((s) => ({
      cause: s.cause,
      summary: `the DNS server ${s.address} fails for ${s.dns?.host ?? '?'} (${s.detail.replace(/^[^:]*: /, '')}) while another answers`,
      fix: 'every lookup that reaches this server first fails or waits: fix it or remove it from resolv.conf (or --dns-server)',
      evidence: [evidenceLine(s)],
    }));
}

function certificateFindings(plan: Plan, steps: readonly Step[]): Finding[] {
  const out: Finding[] = [];
  for (const s of steps.filter((x) => x.phase === 'tls' && x.ok && x.tls !== undefined)) {
    const tls = s.tls as NonNullable<Step['tls']>;
    const leaf = tls.chain[0];
    if (!tls.verificationEnforced && !(tls.chainVerified && tls.nameMatches)) {
      const hidden = {
        ...s,
        ok: false,
        cause: 'tls_certificate_error',
        failedIn: 'tls',
        code: tls.chainError ?? 'ERR_TLS_CERT_ALTNAME_INVALID',
      };
      const { summary, fix } = explainFailure({ plan, steps, step: hidden, same: [hidden] });
      const how =
        plan.notes.some((n) => n.startsWith('--insecure')) || plan.origin === null
          ? '--insecure'
          : 'insecureSkipVerify';
      out.push({
        cause: 'tls_certificate_error',
        summary: `CERTIFICATE VERIFICATION IS OFF (${how}) and it hides this: ${summary}; anyone on the path could impersonate the origin`,
        fix,
        evidence: [evidenceLine(s)],
      });
    } else if (leaf !== undefined && leaf.daysLeft >= 0 && leaf.daysLeft < EXPIRY_WARNING_DAYS) {
      out.push({
        cause: null,
        summary: `the certificate of ${s.address} expires in ${leaf.daysLeft} days (notAfter ${leaf.notAfter})`,
        fix: 'renew it before then',
        evidence: [evidenceLine(s)],
      });
    }
  }
  return out;
}

function httpFindings(plan: Plan, steps: readonly Step[], http: Step): Finding[] {
  const status = http.http?.status ?? null;
  if (!http.ok && status !== null) {
    const { summary, fix } = explainFailure({ plan, steps, step: http, same: [http] });
    return [{ cause: http.cause, summary, fix, evidence: [evidenceLine(http)] }];
  }
  if (status !== null && status >= 500) {
    return [
      {
        cause: null,
        summary: `the origin answers ${status}: the connection works, the application fails`,
        fix: "check the application's logs for this request",
        evidence: [evidenceLine(http)],
      },
    ];
  }
  return [];
}

/** What the probe alone says: reachable or not, the cause, status, evidence, fix and warnings. */
export function probeVerdict(plan: Plan, steps: readonly Step[]): ProbeOutcome {
  const { attempts, carrier } = sidecarPath(plan, steps);
  const http = steps.find((s) => s.phase === 'http');
  const warnings = [
    ...dnsServerFindings(steps),
    ...partialAddresses(plan, steps),
    ...targetFindings(plan, steps, carrier),
    ...certificateFindings(plan, steps),
    ...(http === undefined ? [] : httpFindings(plan, steps, http)),
  ];
  if (carrier !== undefined && http !== undefined) {
    const status = http.http?.status ?? null;
    if (status === null)
      return { reachable: false, verdict: { ...failureVerdict(plan, steps, http, [http]), warnings } };
    return {
      reachable: true,
      verdict: {
        cause: null,
        statusCode: status,
        failedIn: null,
        summary: `${http.address} answers ${status} to GET ${plan.path} (Host ${plan.hostHeader}) in ${Math.round(http.elapsedMs)} ms`,
        fix: null,
        evidence: [carrier, http].map(evidenceLine),
        docs: null,
        source: 'probe',
        warnings,
      },
    };
  }
  if (carrier !== undefined && http === undefined) {
    // Connecting only (a health check without a path): the connection is the answer.
    return {
      reachable: true,
      verdict: {
        cause: null,
        statusCode: null,
        failedIn: null,
        summary: `${carrier.address} accepts connections (${carrier.phase.toUpperCase()} in ${Math.round(carrier.elapsedMs)} ms)`,
        fix: null,
        evidence: [carrier].map(evidenceLine),
        docs: null,
        source: 'probe',
        warnings,
      },
    };
  }
  const failed = dominantStep(attempts);
  if (failed === undefined) {
    return {
      reachable: false,
      verdict: {
        cause: null,
        statusCode: null,
        failedIn: null,
        summary: 'nothing was tried: the origin has no address to connect to',
        fix: 'check spec.upstream.host and spec.upstream.addresses',
        evidence: [],
        docs: null,
        source: 'none',
        warnings,
      },
    };
  }
  const same = attempts.filter((a) => a.cause === failed.cause && a.phase === failed.phase);
  return { reachable: false, verdict: { ...failureVerdict(plan, steps, failed, same), warnings } };
}
