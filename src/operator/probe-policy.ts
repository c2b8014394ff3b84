// What the operator's probe may do, decided before any connection: it runs the
// checklist from the operator's own pod, whose network position may reach more
// than the Origin's author can, so it is a security boundary (docs/security.md).
// It connects only to an Origin's declared upstream and backups (the plan), never
// to an address in a denied network (loopback, link-local: cloud metadata
// services), only for namespaces that opted in when a selector is set, and at
// most once per Origin per interval. Pure, like what a probe leaves in the status.
import net from 'node:net';
import type { Cause } from '../api/causes.ts';
import type { LabelSelector } from '../api/origin.ts';
import { selects } from '../api/selector.ts';
import { clip } from '../api/status.ts';
import { MAX_PROBE_STEPS, type OperatorProbe } from '../api/triangulation.ts';
import { UsageError } from '../errors.ts';

/**
 * Never probed from the operator: its own loopback (127.0.0.1 in an Origin means
 * the sidecar's pod, not the operator's), link-local (cloud metadata at
 * 169.254.169.254, fd00:ec2::254 aside) and the unspecified addresses.
 */
export const DEFAULT_DENIED_NETWORKS = [
  '127.0.0.0/8',
  '::1/128',
  '169.254.0.0/16',
  'fe80::/10',
  '0.0.0.0/8',
  '::/128',
] as const;

export interface ProbePolicy {
  readonly enabled: boolean;
  /** Namespaces that opted in; undefined: every namespace. */
  readonly namespaceSelector: LabelSelector | undefined;
  readonly deniedNetworks: readonly string[];
  /** At most one probe per Origin per this long. */
  readonly minIntervalMs: number;
  /** Probe again while pods keep failing the same way, after this long. */
  readonly refreshMs: number;
}

/** A set of networks an address is checked against; throws UsageError naming the bad CIDR. */
export function networkList(cidrs: readonly string[], flag: string): net.BlockList {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr.trim());
    const family = m === null ? 0 : net.isIP(m[1] as string);
    const prefix = Number(m?.[2]);
    if (m === null || family === 0 || prefix > (family === 4 ? 32 : 128))
      throw new UsageError(`--${flag}: "${cidr}" is not a CIDR such as 10.0.0.0/8 or fd00::/8`);
    list.addSubnet(m[1] as string, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Why `address` may not be probed, or undefined if it may. IPv4-mapped IPv6 is checked as IPv4. */
export function refusal(address: string, denied: net.BlockList): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const ip = mapped ?? address;
  const family = net.isIP(ip);
  if (family === 0) return 'not an IP address';
  return denied.check(ip, family === 4 ? 'ipv4' : 'ipv6')
    ? 'in a network the operator does not probe (--origin-probe-denied-networks)'
    : undefined;
}

/**
 * A label selector as kubectl -l writes it, equality-based: `k=v`, `k==v`,
 * `k!=v`, `k` (exists), `!k` (does not exist), comma-separated. Empty: undefined.
 */
export function parseSelector(text: string, flag: string): LabelSelector | undefined {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) return undefined;
  const matchLabels: Record<string, string> = {};
  const matchExpressions: NonNullable<LabelSelector['matchExpressions']> = [];
  const KEY = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;
  for (const part of parts) {
    const m = /^(!?)([^=!]+)(?:(==|=|!=)(.*))?$/.exec(part);
    const key = m?.[2]?.trim() ?? '';
    if (m === null || !KEY.test(key) || (m[1] === '!' && m[3] !== undefined))
      throw new UsageError(`--${flag}: cannot read "${part}": use key=value, key!=value, key or !key`);
    if (m[3] === undefined)
      matchExpressions.push({ key, operator: m[1] === '!' ? 'DoesNotExist' : 'Exists' });
    else if (m[3] === '!=') matchExpressions.push({ key, operator: 'NotIn', values: [(m[4] ?? '').trim()] });
    else matchLabels[key] = (m[4] ?? '').trim();
  }
  return {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
}

/** Whether the probe may run for an Origin of a namespace with these labels (undefined: unknown). */
export function namespaceAllowed(
  policy: Pick<ProbePolicy, 'enabled' | 'namespaceSelector'>,
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
): { allowed: true } | { allowed: false; why: string } {
  if (!policy.enabled) return { allowed: false, why: 'the operator runs with --no-origin-probe' };
  if (policy.namespaceSelector === undefined) return { allowed: true };
  if (labels === undefined) return { allowed: false, why: `namespace ${namespace} cannot be read` };
  return selects(policy.namespaceSelector, labels)
    ? { allowed: true }
    : {
        allowed: false,
        why: `namespace ${namespace} has not opted in (its labels do not match --origin-probe-namespace-selector)`,
      };
}

/** Whether the pods' failure is new enough to probe for: its shape changed, or the last probe is old. */
export function probeWanted(
  last: { readonly at: number; readonly shape: string } | undefined,
  shape: string,
  now: number,
  refreshMs: number,
): boolean {
  return last === undefined || last.shape !== shape || now - last.at >= refreshMs;
}

/** What the status keeps of a probe: the verdict, where from, when, and each step in one line. */
export function probeRecord(
  run: {
    readonly from: string;
    readonly time: Date;
    readonly reason: OperatorProbe['reason'];
    readonly requestId: string | undefined;
  },
  outcome:
    | { readonly probed: false; readonly why: string }
    | {
        readonly probed: true;
        readonly ok: boolean;
        readonly cause?: string | undefined;
        readonly statusCode?: number | undefined;
        readonly summary: string;
        readonly steps: readonly string[];
        readonly limits: readonly string[];
      },
): OperatorProbe {
  const base = {
    from: clip(run.from, 253),
    time: run.time.toISOString(),
    reason: run.reason,
    ...(run.requestId === undefined ? {} : { requestId: clip(run.requestId, 64) }),
  };
  if (!outcome.probed) return { ...base, result: 'NotProbed', summary: clip(outcome.why, 1024), steps: [] };
  const lines = [...outcome.steps, ...outcome.limits];
  return {
    ...base,
    result: outcome.ok ? 'Reachable' : 'Unreachable',
    ...(outcome.ok || outcome.cause === undefined ? {} : { cause: outcome.cause as Cause }),
    ...(outcome.ok || outcome.statusCode === undefined ? {} : { statusCode: outcome.statusCode }),
    summary: clip(outcome.summary, 1024),
    steps: lines.slice(0, MAX_PROBE_STEPS).map((s) => clip(s, 256)),
  };
}
