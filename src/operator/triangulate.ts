// Where a failure is, from comparing vantage points: each pod's sidecar (grouped
// by node, and by zone where nodes carry the label) and the operator's own probe.
// Pure: the aggregation calls it with the reports that count. The narrowest
// explanation wins: a whole node or zone, else "some pods"; when every pod fails
// the operator's probe tells the origin from the path from the pods.
import { CAUSES, isCause } from '../api/causes.ts';
import {
  MAX_NODE_GROUPS,
  MAX_REASONS,
  MAX_ZONE_GROUPS,
  type NodeGroup,
  type OperatorProbe,
  type Triangulation,
  type ZoneGroup,
} from '../api/triangulation.ts';

/** One pod's view, from its report (and its node from the report or the pod). */
export interface PodView {
  readonly pod: string;
  readonly node: string | undefined;
  readonly failing: boolean;
  readonly cause: string | undefined;
  /** When its health last changed (RFC 3339). */
  readonly since: string;
}

/** Whether the operator may probe this Origin, and if not why (for the reasoning). */
export type ProbeAllowance = { readonly allowed: true } | { readonly allowed: false; readonly why: string };

export interface TriangulationInput {
  readonly pods: readonly PodView[];
  readonly zoneOf: (node: string) => string | undefined;
  readonly probe: OperatorProbe | undefined;
  readonly allowance: ProbeAllowance;
  readonly now: Date;
  /** A probe older than this says nothing about the pods' current failure. */
  readonly probeMaxAgeMs: number;
}

const MAX_NAMED = 3;

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 3)}...`);
const named = (names: readonly string[]) =>
  names.length <= MAX_NAMED
    ? names.join(', ')
    : `${names.slice(0, MAX_NAMED).join(', ')} and ${names.length - MAX_NAMED} more`;

function causesOf(pods: readonly PodView[]): string {
  const counts = new Map<string, number>();
  for (const p of pods)
    counts.set(p.cause ?? 'unknown cause', (counts.get(p.cause ?? 'unknown cause') ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || byName(a[0], b[0]))
    .map(([c]) => c)
    .join(', ');
}

/** Pods by node: failing nodes first, then by name; pods without a node are left out. */
function nodeGroups(pods: readonly PodView[], zoneOf: (node: string) => string | undefined): NodeGroup[] {
  const groups = new Map<string, { pods: number; failing: number }>();
  for (const p of pods) {
    if (p.node === undefined) continue;
    const g = groups.get(p.node) ?? { pods: 0, failing: 0 };
    g.pods++;
    if (p.failing) g.failing++;
    groups.set(p.node, g);
  }
  return [...groups.entries()]
    .map(([name, g]) => {
      const zone = zoneOf(name);
      return { name, ...(zone === undefined ? {} : { zone }), pods: g.pods, failing: g.failing };
    })
    .sort((a, b) => Number(b.failing > 0) - Number(a.failing > 0) || byName(a.name, b.name));
}

function zoneGroups(nodes: readonly NodeGroup[]): ZoneGroup[] {
  const groups = new Map<string, { pods: number; failing: number }>();
  for (const n of nodes) {
    if (n.zone === undefined) continue;
    const g = groups.get(n.zone) ?? { pods: 0, failing: 0 };
    g.pods += n.pods;
    g.failing += n.failing;
    groups.set(n.zone, g);
  }
  return [...groups.entries()]
    .map(([name, g]) => ({ name, ...g }))
    .sort((a, b) => Number(b.failing > 0) - Number(a.failing > 0) || byName(a.name, b.name));
}

/** Every group is all failing or all reaching: the failure follows the grouping. */
const follows = (groups: readonly { pods: number; failing: number }[]) =>
  groups.every((g) => g.failing === 0 || g.failing === g.pods) && groups.some((g) => g.failing > 0);

/** The probe, if it speaks about the current failure: recent, and not older than the failure itself. */
function freshProbe(input: TriangulationInput, failing: readonly PodView[]): OperatorProbe | undefined {
  const p = input.probe;
  if (p === undefined || p.result === 'NotProbed') return undefined;
  const at = Date.parse(p.time);
  if (input.now.getTime() - at > input.probeMaxAgeMs) return undefined;
  const began = Math.min(...failing.map((f) => Date.parse(f.since)).filter((t) => !Number.isNaN(t)));
  return Number.isFinite(began) && at < began ? undefined : p;
}

function probeLine(input: TriangulationInput, probe: OperatorProbe | undefined): string {
  if (probe !== undefined) {
    const what =
      probe.result === 'Reachable' ? 'reaches the origin' : `fails too (${probe.cause ?? 'unreachable'})`;
    return `the operator (${probe.from}, at ${probe.time}) ${what}: ${probe.summary}`;
  }
  if (!input.allowance.allowed) return `the operator does not probe this origin: ${input.allowance.why}`;
  const p = input.probe;
  if (p?.result === 'NotProbed') return `the operator did not probe: ${p.summary}`;
  return p === undefined
    ? 'the operator has not probed the origin yet'
    : `the operator's last probe (${p.time}) predates this failure`;
}

/** What to check on a path from pods, for their cause. */
function pathHint(cause: string | undefined): string {
  if (cause === 'dns_error' || cause === 'dns_timeout')
    return "the pods' DNS: their dnsPolicy and dnsConfig, a NetworkPolicy blocking port 53, the cluster DNS";
  return "a NetworkPolicy on the pods, node egress rules (firewall, security group), or the pods' DNS settings";
}

function allFail(
  input: TriangulationInput,
  pods: readonly PodView[],
  reasons: string[],
): Pick<Triangulation, 'scope' | 'summary'> {
  const cause = causesOf(pods);
  const probe = freshProbe(input, pods);
  reasons.push(probeLine(input, probe));
  const all = `all ${pods.length} pods fail (${cause})`;
  if (probe?.result === 'Unreachable') {
    const hint = isCause(probe.cause ?? '') ? ` ${CAUSES[probe.cause as keyof typeof CAUSES].hint}` : '';
    return {
      scope: 'Origin',
      summary: `${all} and so does the operator from its own pod: the origin itself or the network in front of it.${hint}`,
    };
  }
  if (probe?.result === 'Reachable') {
    return {
      scope: 'PodPath',
      summary: `${all} while the operator reaches the origin: the path from those pods is the problem: ${pathHint(pods[0]?.cause)}.`,
    };
  }
  return {
    scope: 'AllPods',
    summary: `${all}; the operator's view is not known, so the origin cannot be told from the path.`,
  };
}

function someFail(
  input: TriangulationInput,
  pods: readonly PodView[],
  failing: readonly PodView[],
  nodes: readonly NodeGroup[],
  zones: readonly ZoneGroup[],
  reasons: string[],
): Pick<Triangulation, 'scope' | 'summary'> {
  const head = `${failing.length}/${pods.length} pods fail (${causesOf(failing)})`;
  const located = failing.every((p) => p.node !== undefined);
  const failingNodes = nodes.filter((n) => n.failing > 0);
  const zoned = located && failingNodes.every((n) => n.zone !== undefined);
  const failingZones = zones.filter((z) => z.failing > 0);
  reasons.push(probeLine(input, freshProbe(input, failing)));
  if (zoned && follows(zones) && failingNodes.length > 1 && zones.length > 1) {
    const names = failingZones.map((z) => z.name);
    return {
      scope: 'Zones',
      summary: `${head}, all in zone ${named(names)} (nodes ${named(failingNodes.map((n) => n.name))}), and every pod there: check that zone's egress (NAT gateway, firewall, routes) to the origin.`,
    };
  }
  if (located && follows(nodes)) {
    const names = failingNodes.map((n) => n.name);
    return {
      scope: 'Nodes',
      summary: `${head}, all on node ${named(names)}, and every pod there: check ${names.length === 1 ? 'that node' : 'those nodes'}: egress rules, routes, DNS, NetworkPolicy enforcement.`,
    };
  }
  const where = located
    ? `on ${failingNodes.map((n) => `${n.name} (${n.failing}/${n.pods})`).join(', ')}`
    : 'on nodes not all known';
  return {
    scope: 'SomePods',
    summary: `${head}, ${clip(where, 300)}: not a whole node or zone; compare those pods with the others (their NetworkPolicies, labels, DNS settings).`,
  };
}

/** The verdict over the vantage points; undefined while no pod reports. */
export function triangulate(input: TriangulationInput): Triangulation | undefined {
  const pods = input.pods;
  if (pods.length === 0) return undefined;
  const failing = pods.filter((p) => p.failing);
  const nodes = nodeGroups(pods, input.zoneOf);
  const zones = zoneGroups(nodes);
  const reasons = [
    `${pods.length} pods report: ${failing.length} fail, ${pods.length - failing.length} reach the origin`,
  ];
  if (nodes.length > 0) {
    reasons.push(
      nodes
        .map((n) => `${n.name}${n.zone === undefined ? '' : ` (${n.zone})`} ${n.failing}/${n.pods} failing`)
        .join('; '),
    );
  }
  let verdict: Pick<Triangulation, 'scope' | 'summary'>;
  if (failing.length === 0) verdict = { scope: 'None', summary: `all ${pods.length} pods reach the origin.` };
  else if (failing.length === pods.length) verdict = allFail(input, failing, reasons);
  else verdict = someFail(input, pods, failing, nodes, zones, reasons);
  return {
    scope: verdict.scope,
    summary: clip(verdict.summary.charAt(0).toUpperCase() + verdict.summary.slice(1), 1024),
    reasoning: reasons.slice(0, MAX_REASONS).map((r) => clip(r, 512)),
    ...(nodes.length === 0 ? {} : { nodes: nodes.slice(0, MAX_NODE_GROUPS) }),
    ...(zones.length === 0 ? {} : { zones: zones.slice(0, MAX_ZONE_GROUPS) }),
  };
}
