// The library's entry: run the checklist for a plan, decide the verdict, and
// assemble the versioned Diagnosis. The CLI, the sidecar's active checks and the
// operator's probe all call diagnose(); the pure half (diagnosisOf, exitCodeOf)
// is what their tests and outputs share.
import { type ChecklistEvents, type ChecklistOptions, runChecklist } from './checklist.ts';
import type { Plan } from './plan.ts';
import { DIAGNOSIS_API_VERSION, DIAGNOSIS_KIND, type Diagnosis, type Step } from './schema.ts';
import { decide, LOCAL_VANTAGE, limitsOf, type Vantage } from './vantage.ts';
import { probeVerdict } from './verdict.ts';

export interface DiagnoseOptions {
  readonly vantage?: Vantage;
  readonly events?: ChecklistEvents;
  /** How a running component runs it (shared resolver, no HTTP, addresses it may not probe). */
  readonly checklist?: ChecklistOptions;
}

/** The Diagnosis of a plan from its steps: pure. */
export function diagnosisOf(
  plan: Plan,
  steps: readonly Step[],
  vantage: Vantage,
  startedAt: Date,
  elapsedMs: number,
): Diagnosis {
  const { reachable, verdict } = decide(plan, steps, probeVerdict(plan, steps), vantage);
  return {
    apiVersion: DIAGNOSIS_API_VERSION,
    kind: DIAGNOSIS_KIND,
    target: {
      input: plan.input,
      origin: plan.origin === null ? null : { ...plan.origin },
      upstreams: plan.targets.map((t) => ({ host: t.host, port: t.port, tls: t.tls !== undefined })),
      hostHeader: plan.hostHeader,
      path: plan.path,
      connectTimeoutMs: plan.connectTimeoutMs,
      responseTimeoutMs: plan.responseTimeoutMs,
      statusProfile: plan.profile,
    },
    vantage: { inCluster: vantage.inCluster, limits: limitsOf(plan, vantage) },
    reachable,
    verdict,
    steps: [...steps],
    sidecars: vantage.sidecars,
    startedAt: startedAt.toISOString(),
    elapsedMs,
  };
}

/** Runs the checklist against the plan's origin and returns the Diagnosis. Never throws for an origin failure. */
export async function diagnose(plan: Plan, options: DiagnoseOptions = {}): Promise<Diagnosis> {
  const startedAt = new Date();
  const started = performance.now();
  const refused: string[] = [];
  const events: ChecklistEvents = {
    ...options.events,
    onRefused: (target, address, reason) => {
      refused.push(`not probed from here: ${address} (${reason})`);
      options.events?.onRefused?.(target, address, reason);
    },
  };
  const steps = await runChecklist(plan, events, options.checklist);
  const vantage = options.vantage ?? LOCAL_VANTAGE;
  const seen = refused.length === 0 ? vantage : { ...vantage, notes: [...vantage.notes, ...refused] };
  return diagnosisOf(plan, steps, seen, startedAt, performance.now() - started);
}

/** Exit codes of `originguard diagnose`: sysexits for the tool's own problems, 80-87 per class of cause. */
export const EXIT = {
  reachable: 0,
  error: 1,
  usage: 64,
  invalidConfig: 65,
  clusterUnavailable: 69,
  dns: 80,
  refused: 81,
  connectTimeout: 82,
  unroutable: 83,
  reset: 84,
  tls: 85,
  response: 86,
  inconclusive: 87,
} as const;

const CAUSE_EXITS: Readonly<Record<string, number>> = {
  dns_error: EXIT.dns,
  dns_timeout: EXIT.dns,
  connection_refused: EXIT.refused,
  connection_timeout: EXIT.connectTimeout,
  destination_ip_unroutable: EXIT.unroutable,
  destination_ip_prohibited: EXIT.unroutable,
  tls_certificate_error: EXIT.tls,
  tls_protocol_error: EXIT.tls,
  tls_alert_received: EXIT.tls,
  http_response_timeout: EXIT.response,
  http_protocol_error: EXIT.response,
  http_response_incomplete: EXIT.response,
};

/** The exit code of a cause: its class; `afterRequest` tells a reset mid-request (536) from one while connecting. */
export function exitCodeOfCause(cause: string | null, afterRequest: boolean): number {
  if (cause === null) return EXIT.inconclusive;
  if (cause === 'connection_terminated') return afterRequest ? EXIT.response : EXIT.reset;
  return CAUSE_EXITS[cause] ?? EXIT.error;
}

/** The exit code a Diagnosis gives: 0 reachable, else its cause's class, 87 when it cannot be told. */
export function exitCodeOf(d: Diagnosis): number {
  if (d.reachable) return EXIT.reachable;
  const v = d.verdict;
  return exitCodeOfCause(
    v.cause,
    v.failedIn === 'request' || v.failedIn === 'response' || v.statusCode === 536,
  );
}
