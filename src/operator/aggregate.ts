// Origin.status from the pods' OriginReports: the operator's one decision about an
// Origin's health, as a pure function of what its informers hold. The reconciler
// calls aggregateStatus(), skips the write when statusChanged() (status-diff.ts)
// says nothing changed, and records the Events transitionEvents() (status-events.ts)
// asks for.
import { CAUSES, isCause } from '../api/causes.ts';
import { INJECT_ANNOTATION, SIDECAR_CONTAINER } from '../api/contract.ts';
import type { LabelSelector } from '../api/origin.ts';
import type { OriginReport, OriginReportStatus, PodFailureDetail } from '../api/report.ts';
import { selects } from '../api/selector.ts';
import {
  type CauseSummary,
  CONDITION_TYPES,
  type Condition,
  type ConditionStatus,
  type ConditionType,
  clip,
  MAX_CAUSES,
  MAX_SAMPLE_PODS,
  type NotInjected,
  type OriginStatus,
  type PodCounts,
} from '../api/status.ts';
import type { OperatorProbe } from '../api/triangulation.ts';
import type { Pod } from '../kube/objects.ts';
import { metaTime } from '../kube/time.ts';
import { type PodView, type ProbeAllowance, triangulate } from './triangulate.ts';

/** The parts of an Origin the aggregation reads. */
export interface OriginLike {
  metadata: { name: string; namespace?: string; generation?: number; uid?: string };
  spec: { selector: LabelSelector };
}

export interface AggregateInput {
  origin: OriginLike;
  /** Pods of the Origin's namespace; the selector is applied here. */
  pods: readonly Pod[];
  /** Reports of that namespace labelled for this Origin; checked again here (labels hold shortened names). */
  reports: readonly OriginReport[];
  /** The status as last written: unchanged conditions keep their lastTransitionTime. */
  previous: OriginStatus | undefined;
  now: Date;
  /** The other vantage points: the operator's probe and the nodes' zones (triangulate.ts). */
  vantage?: Vantage;
}

export interface Vantage {
  /** The operator's latest probe of this Origin; default: the one in the previous status. */
  probe?: OperatorProbe | undefined;
  zoneOf: (node: string) => string | undefined;
  allowance: ProbeAllowance;
  probeMaxAgeMs: number;
}

/** Without an operator probe (e.g. a replica that never ran one): pods are compared among themselves. */
const NO_VANTAGE: Vantage = {
  zoneOf: () => undefined,
  allowance: { allowed: false, why: 'the operator runs without --origin-probe' },
  probeMaxAgeMs: 0,
};

/**
 * How long counted reports may run another spec before Degraded says so. Sidecars
 * reload within seconds of a spec change; meanwhile Ready is False (SpecNotApplied),
 * and Degraded only once it is stuck. The reconciler should requeue after this long.
 */
export const SPEC_APPLY_GRACE_MS = 120_000;

const MAX_HINT = 1024;
const MAX_WORKLOADS_NAMED = 3;
const POD_TEMPLATE_HASH = 'pod-template-hash';

const instant = (t: string | undefined): number => (t === undefined ? Number.NaN : Date.parse(t));
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const sample = (names: string[]): string[] => names.sort(byName).slice(0, MAX_SAMPLE_PODS);
const podsRun = (n: number): string => (n === 1 ? '1 pod runs' : `${n} pods run`);
const sentence = (text: string): string => (/[.!?]$/.test(text) ? text : `${text}.`);
const summaryOf = (cause: string): string =>
  isCause(cause) ? CAUSES[cause].summary : `The sidecars report ${cause}.`;

/** "connection_refused" -> "ConnectionRefused": a cause as a condition reason. */
export function causeReason(cause: string): string {
  return cause
    .split('_')
    .filter((part) => part !== '')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

// Native sidecar (initContainers) or plain container: the webhook uses either.
const isInjected = ({ spec }: Pod): boolean =>
  [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].some((c) => c.name === SIDECAR_CONTAINER);

// Finished and terminating pods no longer serve traffic: they count nowhere.
const isSelected = (selector: LabelSelector, pod: Pod): boolean =>
  selects(selector, pod.metadata?.labels) &&
  pod.metadata?.deletionTimestamp === undefined &&
  pod.status?.phase !== 'Succeeded' &&
  pod.status?.phase !== 'Failed';

const causeOf = (r: OriginReportStatus): string | undefined => r.cause ?? r.lastFailure?.cause;
const lastSeenOf = (r: OriginReportStatus): string => r.lastFailure?.time ?? r.lastTransitionTime;

/**
 * The reports that count: about this Origin (its name, and its UID when the sidecar
 * knew it, so a recreated Origin ignores reports about its predecessor), written for
 * a pod that is selected and injected now. Reports of gone pods linger until the
 * garbage collector removes them. One per pod: the latest heartbeat wins.
 */
function countedReports(
  origin: OriginLike,
  injected: readonly Pod[],
  reports: readonly OriginReport[],
): OriginReportStatus[] {
  const nameOfUid = new Map(injected.map((p) => [p.metadata?.uid, p.metadata?.name]));
  const byPod = new Map<string, OriginReportStatus>();
  for (const { status: r } of reports) {
    if (r?.originName !== origin.metadata.name) continue;
    if (r.originUID && origin.metadata.uid && r.originUID !== origin.metadata.uid) continue;
    if (nameOfUid.get(r.podUID) !== r.podName) continue;
    const seen = byPod.get(r.podUID);
    if (seen === undefined || instant(r.heartbeatTime) > instant(seen.heartbeatTime)) byPod.set(r.podUID, r);
  }
  return [...byPod.values()].sort((a, b) => byName(a.podName, b.podName));
}

/** Failing reports by cause, most pods first (ties by name), bounded, with a sorted sample of pods. */
function causeSummaries(failing: readonly OriginReportStatus[]): CauseSummary[] {
  const groups = new Map<string, OriginReportStatus[]>();
  for (const r of failing) {
    const cause = causeOf(r);
    if (cause !== undefined) groups.set(cause, [...(groups.get(cause) ?? []), r]);
  }
  return [...groups.entries()]
    .map(([cause, rs]) => ({
      cause: cause as CauseSummary['cause'],
      pods: rs.length,
      samplePods: sample(rs.map((r) => r.podName)),
      lastSeen: rs.map(lastSeenOf).reduce((a, b) => (instant(b) > instant(a) ? b : a)),
    }))
    .sort((a, b) => b.pods - a.pods || byName(a.cause, b.cause))
    .slice(0, MAX_CAUSES);
}

/** The newest classified failure among the failing reports, with the pod that saw it. */
function newestFailure(failing: readonly OriginReportStatus[]): PodFailureDetail | undefined {
  let newest: PodFailureDetail | undefined;
  for (const r of failing) {
    if (r.lastFailure === undefined) continue;
    if (newest === undefined || instant(r.lastFailure.time) > instant(newest.time)) {
      newest = { ...r.lastFailure, pod: r.podName };
    }
  }
  return newest;
}

/** The command that recreates `pod` with the sidecar, as `kind/name`, when a controller owns it. */
function workloadOf(pod: Pod): string | undefined {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
  if (owner?.kind === 'ReplicaSet') {
    // A Deployment names its ReplicaSets <deployment>-<pod-template-hash>.
    const hash = pod.metadata?.labels?.[POD_TEMPLATE_HASH];
    const owned = hash !== undefined && owner.name.endsWith(`-${hash}`);
    return owned ? `deployment/${owner.name.slice(0, -hash.length - 1)}` : undefined;
  }
  if (owner?.kind === 'StatefulSet' || owner?.kind === 'DaemonSet')
    return `${owner.kind.toLowerCase()}/${owner.name}`;
  return undefined;
}

/** Selected pods created without the sidecar, and how to recreate them with it: restart what owns them. */
function notInjectedOf(missing: readonly Pod[], namespace: string | undefined): NotInjected | undefined {
  if (missing.length === 0) return undefined;
  const workloads = [...new Set(missing.map(workloadOf).filter((w) => w !== undefined))].sort(byName);
  const named = workloads.slice(0, MAX_WORKLOADS_NAMED).join(' ') || 'deployment/<name>';
  const ns = namespace === undefined ? '' : ` -n ${namespace}`;
  const parts = [
    `${podsRun(missing.length)} without the sidecar (created before the Origin, or while the injection webhook was unavailable): restart the workload so its pods are created again with the sidecar, e.g. kubectl rollout restart${ns} ${named}.`,
  ];
  const optedOut = missing.filter((p) => p.metadata?.annotations?.[INJECT_ANNOTATION] === 'false').length;
  if (optedOut > 0) {
    parts.push(
      `${optedOut} of them opt out with the annotation ${INJECT_ANNOTATION}: "false": remove it from the pod template, or leave those pods out of the selector.`,
    );
  }
  const samplePods = sample(missing.map((p) => p.metadata?.name ?? ''));
  return { count: missing.length, samplePods, hint: clip(parts.join(' '), MAX_HINT) };
}

interface Facts {
  generation: number;
  counts: PodCounts;
  counted: OriginReportStatus[];
  /** Node of each injected pod, by UID (from the pod; a report names it too). */
  nodeOf: Map<string | undefined, string | undefined>;
  failing: OriginReportStatus[];
  /** Counted reports whose sidecar runs another spec than metadata.generation (older, or newer than our cache). */
  stale: OriginReportStatus[];
  causes: CauseSummary[];
  hint: string | undefined;
  notInjected: NotInjected | undefined;
}

function factsOf({ origin, pods, reports }: AggregateInput): Facts {
  const generation = origin.metadata.generation ?? 0;
  const selected = pods.filter((p) => isSelected(origin.spec.selector, p));
  const injected = selected.filter(isInjected);
  const missing = selected.filter((p) => !isInjected(p));
  const counted = countedReports(origin, injected, reports);
  const failing = counted.filter((r) => r.health === 'Unreachable');
  const causes = causeSummaries(failing);
  const top = causes[0]?.cause;
  const reportHint = failing.find((r) => causeOf(r) === top && r.hint)?.hint;
  return {
    generation,
    counts: {
      selected: selected.length,
      injected: injected.length,
      current: counted.filter((r) => r.originGeneration === generation).length,
      reachable: counted.filter((r) => r.health === 'Reachable').length,
      failing: failing.length,
    },
    counted,
    nodeOf: new Map(injected.map((p) => [p.metadata?.uid, p.spec?.nodeName])),
    failing,
    stale: counted.filter((r) => r.originGeneration !== generation),
    causes,
    hint: top !== undefined && isCause(top) ? CAUSES[top].hint : reportHint,
    notInjected: notInjectedOf(missing, origin.metadata.namespace),
  };
}

type Verdict = Pick<Condition, 'status' | 'reason' | 'message'>;
function verdict(status: ConditionStatus, reason: string, message: string): Verdict {
  return { status, reason, message };
}

function reachableVerdict(f: Facts): Verdict {
  const top = f.causes[0];
  const reach = `${f.counts.reachable}/${f.counts.selected} pods reach the origin`;
  if (f.counts.reachable > 0 && f.failing.length === 0)
    return verdict('True', 'OriginReachable', `${reach}.`);
  if (f.counts.reachable > 0) {
    const why = top ? `: ${summaryOf(top.cause)}` : '.';
    return verdict('True', 'PartiallyReachable', `${reach}; ${f.failing.length} fail${why}`);
  }
  if (f.failing.length > 0) {
    const what = sentence(top ? summaryOf(top.cause) : 'The origin is unreachable');
    const pods = `${top?.pods ?? f.failing.length}/${f.counts.selected} pods`;
    const reason = top ? causeReason(top.cause) : 'OriginUnreachable';
    return verdict('False', reason, `${pods}: ${what} ${f.hint ?? ''}`.trim());
  }
  if (f.counted.length === 0) {
    return verdict('Unknown', 'NoReports', 'No sidecar of a selected pod has reported yet.');
  }
  const waiting = `${f.counted.length} of ${f.counts.injected} injected pods report, but no request has reached the origin yet.`;
  return verdict('Unknown', 'AwaitingTraffic', waiting);
}

/** Old-spec reports count as Degraded once they outlast the grace, timed from Ready turning False for them. */
function specStuck(f: Facts, previous: OriginStatus | undefined, now: Date): boolean {
  if (f.stale.length === 0) return false;
  const ready = previous?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'False' || ready.reason !== 'SpecNotApplied') return false;
  return now.getTime() - instant(ready.lastTransitionTime) >= SPEC_APPLY_GRACE_MS;
}

function staleMessage(f: Facts): string {
  const old = [...new Set(f.stale.map((r) => r.originGeneration))].sort((a, b) => a - b).join(', ');
  return `${podsRun(f.stale.length)} generation ${old} of the spec, not ${f.generation}: their sidecars reload the Origin when it changes; check their logs.`;
}

function degradedVerdict(f: Facts, stuck: boolean): Verdict {
  const found: Verdict[] = [];
  if (f.failing.length > 0 && f.counts.reachable > 0) {
    const top = f.causes[0];
    const of = `${f.failing.length} of ${f.failing.length + f.counts.reachable} pods fail to reach the origin`;
    found.push(verdict('True', 'SomePodsFailing', top ? `${of}: ${summaryOf(top.cause)}` : `${of}.`));
  }
  if (f.notInjected) found.push(verdict('True', 'PodsNotInjected', f.notInjected.hint));
  if (stuck) found.push(verdict('True', 'SpecNotApplied', staleMessage(f)));
  const [first] = found;
  if (first === undefined) return verdict('False', 'AsExpected', 'Every selected pod runs the sidecar.');
  // One reason (the most urgent), every finding in the message.
  return { ...first, message: found.map((v) => v.message).join(' ') };
}

// Ready is False as soon as it cannot become True whatever the pods report next;
// Unknown only while reachability alone decides.
function readyVerdict(f: Facts, reachable: Verdict, degraded: Verdict): Verdict {
  if (f.counts.selected === 0)
    return verdict('False', 'NoPodsSelected', 'The selector selects no running pod.');
  if (f.counts.injected === 0) return verdict('False', 'PodsNotInjected', degraded.message);
  if (reachable.status === 'False') return verdict('False', 'OriginUnreachable', reachable.message);
  if (degraded.status === 'True') return { ...degraded, status: 'False' };
  if (f.stale.length > 0) return verdict('False', 'SpecNotApplied', staleMessage(f));
  if (reachable.status === 'Unknown') return verdict('Unknown', 'AwaitingReports', reachable.message);
  return verdict('True', 'Ready', reachable.message);
}

function toCondition(
  type: ConditionType,
  verdict: Verdict,
  input: AggregateInput,
  generation: number,
): Condition {
  const before = input.previous?.conditions?.find((c) => c.type === type);
  const kept = before?.status === verdict.status ? before.lastTransitionTime : undefined;
  return {
    type,
    status: verdict.status,
    observedGeneration: generation,
    lastTransitionTime: kept ?? metaTime(input.now),
    reason: verdict.reason,
    message: verdict.message,
  };
}

/** Each counted pod as the triangulation sees it; the pod's own spec.nodeName is the authority on its node. */
function podViews(f: Facts): PodView[] {
  return f.counted.map((r) => ({
    pod: r.podName,
    node: f.nodeOf.get(r.podUID) ?? r.nodeName,
    failing: r.health === 'Unreachable',
    cause: causeOf(r),
    since: r.lastTransitionTime,
  }));
}

/** Aggregates an Origin's pods and reports into the status the operator writes. */
export function aggregateStatus(input: AggregateInput): OriginStatus {
  const f = factsOf(input);
  const vantage = input.vantage ?? NO_VANTAGE;
  const probe = vantage.probe ?? input.previous?.operatorProbe;
  const triangulation = triangulate({ ...vantage, probe, pods: podViews(f), now: input.now });
  const reachable = reachableVerdict(f);
  const degraded = degradedVerdict(f, specStuck(f, input.previous, input.now));
  const verdicts: Record<ConditionType, Verdict> = {
    Ready: readyVerdict(f, reachable, degraded),
    Reachable: reachable,
    Degraded: degraded,
  };
  const top = f.causes[0];
  const lastFailure = newestFailure(f.failing);
  return {
    observedGeneration: f.generation,
    conditions: CONDITION_TYPES.map((type) => toCondition(type, verdicts[type], input, f.generation)),
    reachable: reachable.status,
    ...(top ? { cause: top.cause } : {}),
    ...(top && f.hint ? { hint: f.hint } : {}),
    podsSummary: `${f.counts.reachable}/${f.counts.selected}`,
    pods: f.counts,
    ...(f.causes.length > 0 ? { causes: f.causes } : {}),
    ...(lastFailure ? { lastFailure } : {}),
    ...(f.notInjected ? { notInjected: f.notInjected } : {}),
    ...(triangulation === undefined ? {} : { triangulation }),
    ...(probe === undefined ? {} : { operatorProbe: probe }),
  };
}
