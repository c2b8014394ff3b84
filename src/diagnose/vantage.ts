// What the place a diagnosis runs from can and cannot see, and whose view the
// verdict puts first. A laptop outside the cluster cannot resolve
// *.svc.cluster.local nor, usually, reach Pod and Service IPs: its failure there
// proves nothing about the origin, so the Origin's sidecars (their reports)
// speak first, and this machine's result is shown as its own. Pure.
import { CAUSES, causeDocUrl, isCause } from '../api/causes.ts';
import { statusFor } from '../upstream/classify.ts';
import { clusterOnlyHost, type Plan } from './plan.ts';
import type { Finding, SidecarView, Step, Verdict } from './schema.ts';
import type { ProbeOutcome } from './verdict.ts';

export interface Vantage {
  /** Running inside a pod of the cluster (KUBERNETES_SERVICE_HOST is set). */
  readonly inCluster: boolean;
  /** The Origin was read from a cluster: its sidecars run in pods, with the cluster's DNS search list. */
  readonly fromCluster: boolean;
  /** What the Origin's sidecars report; null when the Origin is not from a cluster (or unreadable). */
  readonly sidecars: SidecarView | null;
  /** Anything else this run could not see (reports it was not allowed to read...). */
  readonly notes: readonly string[];
}

export const LOCAL_VANTAGE: Vantage = { inCluster: false, fromCluster: false, sidecars: null, notes: [] };

function blindHosts(plan: Plan, vantage: Vantage): string[] {
  if (vantage.inCluster) return [];
  const namespace = vantage.fromCluster ? plan.origin?.namespace : undefined;
  return plan.targets.map((t) => t.host).filter((h) => clusterOnlyHost(h, namespace));
}

/** What this vantage point cannot see, for people. */
export function limitsOf(plan: Plan, vantage: Vantage): string[] {
  const blind = blindHosts(plan, vantage);
  const limits = [...plan.notes, ...vantage.notes];
  if (blind.length > 0) {
    limits.push(
      `this machine is outside the cluster: it cannot resolve cluster-internal names (${blind.join(', ')}), and Pod and Service IPs are usually not routable from it`,
    );
  } else if (!vantage.inCluster && vantage.sidecars !== null) {
    limits.push(
      "this machine is outside the cluster: its network path to the origin may differ from the pods'",
    );
  }
  return limits;
}

/** The probe failed only because of where it runs: a cluster-only name, from outside the cluster. */
function probeIsBlind(plan: Plan, vantage: Vantage, probe: ProbeOutcome, steps: readonly Step[]): boolean {
  if (probe.reachable || vantage.inCluster) return false;
  const blind = blindHosts(plan, vantage);
  if (blind.length === 0) return false;
  // Every step that failed is about a blind target: DNS of a cluster name, or its cluster addresses.
  return steps.filter((s) => !s.ok).every((s) => blind.includes(plan.targets[s.target]?.host ?? ''));
}

const podLines = (sidecars: SidecarView): string[] =>
  sidecars.pods.map(
    (p) =>
      `pod ${p.pod}: ${p.health}${p.cause === null ? '' : ` ${p.cause}`}${p.since === null ? '' : ` since ${p.since}`}${p.lastFailure === null ? '' : `, last ${p.lastFailure}`}`,
  );

const fromHere = (lines: readonly string[]) => lines.map((l) => `from this machine: ${l}`);

function failingSummary(sidecars: SidecarView): string {
  const failing = sidecars.pods.filter((p) => p.health === 'Unreachable');
  const pods = sidecars.podsSummary === null ? '' : ` (${sidecars.podsSummary} pods reachable)`;
  return `the Origin's sidecars report ${sidecars.cause ?? 'failures'}${failing.length > 0 ? ` on ${failing.length} pod(s)` : ''}${pods}`;
}

/** The pods fail: their cause leads; this machine's result says whether it is the origin or the path. */
function sidecarsFail(sidecars: SidecarView, probe: ProbeOutcome, blind: boolean): Verdict {
  const cause = sidecars.cause;
  const here = probe.verdict;
  const agree = !probe.reachable && here.cause === cause;
  const second = probe.reachable
    ? `; yet this machine reaches the origin (${here.statusCode}): the problem is the path from the pods (NetworkPolicy, egress firewall, cluster DNS)`
    : blind
      ? '; this machine cannot check it from outside the cluster'
      : agree
        ? `; this machine sees the same: ${here.summary}`
        : `; from this machine: ${here.summary}`;
  const hint = cause !== null && isCause(cause) ? CAUSES[cause].hint : null;
  return {
    cause,
    statusCode:
      sidecars.statusCode ??
      (cause !== null && isCause(cause) ? statusFor({ cause, phase: 'connect' }, 'Uniform') : null),
    failedIn: null,
    summary: `${failingSummary(sidecars)}${second}`,
    fix: agree ? here.fix : (sidecars.hint ?? hint),
    evidence: [...podLines(sidecars), ...fromHere(here.evidence)],
    docs: cause === null ? null : causeDocUrl(cause),
    source: 'sidecars',
    warnings: here.warnings,
  };
}

/** The pods reach the origin though this machine does not. */
function sidecarsReach(sidecars: SidecarView, probe: ProbeOutcome, blind: boolean): Verdict {
  const finding: Finding = {
    cause: blind ? null : probe.verdict.cause,
    summary: blind
      ? 'not checked from this machine: it is outside the cluster'
      : `this machine cannot reach it: ${probe.verdict.summary}`,
    fix: blind ? null : probe.verdict.fix,
    evidence: fromHere(probe.verdict.evidence),
  };
  return {
    cause: null,
    statusCode: null,
    failedIn: null,
    summary: `the Origin's sidecars reach the origin${sidecars.podsSummary === null ? '' : ` (${sidecars.podsSummary} pods)`}`,
    fix: null,
    evidence: podLines(sidecars),
    docs: null,
    source: 'sidecars',
    warnings: [finding, ...probe.verdict.warnings],
  };
}

function inconclusive(plan: Plan, vantage: Vantage, probe: ProbeOutcome): Verdict {
  const blind = blindHosts(plan, vantage);
  return {
    cause: null,
    statusCode: null,
    failedIn: null,
    summary: `cannot tell from this machine: ${blind.join(', ')} ${blind.length === 1 ? 'is a cluster-internal name' : 'are cluster-internal names'} it cannot resolve, and no sidecar reports on this origin yet`,
    fix: 'run the diagnosis from inside the cluster (kubectl exec into a pod with originguard, or `kubectl debug` with the originguard image), or send a request through a sidecar so that it reports',
    evidence: fromHere(probe.verdict.evidence),
    docs: null,
    source: 'none',
    warnings: probe.verdict.warnings,
  };
}

/** Some pods fail while the Origin counts as reachable (others reach it): worth a warning. */
function failingPods(sidecars: SidecarView | null): Finding[] {
  if (sidecars === null || sidecars.reachable === 'False') return [];
  const failing = sidecars.pods.filter((p) => p.health === 'Unreachable');
  if (failing.length === 0) return [];
  const causes = [...new Set(failing.map((p) => p.cause ?? 'failures'))].join(', ');
  return [
    {
      cause: failing[0]?.cause ?? null,
      summary: `${failing.length} of ${sidecars.pods.length} pods' sidecars fail (${causes}) while others reach the origin: the path from those pods differs (node, zone, NetworkPolicy)`,
      fix: failing[0]?.hint ?? sidecars.hint,
      evidence: podLines({ ...sidecars, pods: failing }),
    },
  ];
}

/** The probe's or the sidecars' verdict, before the pods that fail while others reach are added. */
function lead(
  plan: Plan,
  steps: readonly Step[],
  probe: ProbeOutcome,
  vantage: Vantage,
): { reachable: boolean; verdict: Verdict } {
  const blind = probeIsBlind(plan, vantage, probe, steps);
  const sidecars = vantage.sidecars;
  const view = sidecars?.reachable;
  if (!vantage.inCluster && sidecars !== null && view === 'False')
    return { reachable: false, verdict: sidecarsFail(sidecars, probe, blind) };
  if (!vantage.inCluster && sidecars !== null && view === 'True' && !probe.reachable)
    return { reachable: true, verdict: sidecarsReach(sidecars, probe, blind) };
  if (blind) return { reachable: false, verdict: inconclusive(plan, vantage, probe) };
  if (sidecars !== null && view === 'False' && probe.reachable) {
    const warning: Finding = {
      cause: sidecars.cause,
      summary: `${failingSummary(sidecars)} while this pod reaches the origin: the path from those pods differs (NetworkPolicy, node, zone)`,
      fix: sidecars.hint,
      evidence: podLines(sidecars),
    };
    return { reachable: true, verdict: { ...probe.verdict, warnings: [warning, ...probe.verdict.warnings] } };
  }
  return { reachable: probe.reachable, verdict: probe.verdict };
}

/** The final verdict: the probe's, unless the vantage point says the sidecars must speak first. */
export function decide(
  plan: Plan,
  steps: readonly Step[],
  probe: ProbeOutcome,
  vantage: Vantage,
): { reachable: boolean; verdict: Verdict } {
  const { reachable, verdict } = lead(plan, steps, probe, vantage);
  return {
    reachable,
    verdict: { ...verdict, warnings: [...failingPods(vantage.sidecars), ...verdict.warnings] },
  };
}
