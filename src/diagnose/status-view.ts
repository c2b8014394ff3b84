// What an Origin's sidecars report, read from the cluster: Origin.status (the
// operator's aggregate) and the pods' OriginReports, turned into the sidecars'
// view the diagnosis weighs, and into the text `kubectl originguard status`
// prints (which pods fail with which cause, since when, the hint). Pure.
import type { OriginManifest } from '../api/origin.ts';
import type { OriginReport } from '../api/report.ts';
import type { OriginStatus } from '../api/status.ts';
import type { Style } from './render.ts';
import type { SidecarPod, SidecarView } from './schema.ts';

/** An Origin as the API server returns it. */
export type OriginObject = OriginManifest & { status?: OriginStatus };

const HEALTH_ORDER: Readonly<Record<string, number>> = { Unreachable: 0, Unknown: 1, Reachable: 2 };

/** One pod's report as the views show it. */
export function podOf(report: OriginReport): SidecarPod {
  const s = report.status;
  const lf = s.lastFailure;
  return {
    pod: s.podName,
    health: s.health,
    cause: s.cause ?? null,
    since: s.lastTransitionTime,
    failures: s.failures,
    lastFailure:
      lf === undefined
        ? null
        : `${lf.statusCode} ${lf.cause}${lf.address === undefined ? '' : ` ${lf.address}`} at ${lf.time}`,
    hint: s.hint ?? null,
  };
}

/** The pods, failing ones first, then by name. */
export function podsOf(reports: readonly OriginReport[]): SidecarPod[] {
  return reports
    .map(podOf)
    .sort(
      (a, b) => (HEALTH_ORDER[a.health] ?? 1) - (HEALTH_ORDER[b.health] ?? 1) || a.pod.localeCompare(b.pod),
    );
}

/** The sidecars' view of one Origin. */
export function sidecarView(origin: OriginObject, reports: readonly OriginReport[]): SidecarView {
  const st = origin.status;
  return {
    reachable: st?.reachable ?? 'Unknown',
    cause: st?.cause === undefined || st.cause === '' ? null : st.cause,
    hint: st?.hint ?? null,
    podsSummary: st?.podsSummary ?? null,
    statusCode: st?.lastFailure?.statusCode ?? null,
    pods: podsOf(reports),
  };
}

/** kubectl's way of saying how long ago: 45s, 3m, 5h, 2d. */
export function age(from: string | null | undefined, now: number): string {
  if (from === null || from === undefined) return '-';
  const s = Math.max(0, Math.floor((now - Date.parse(from)) / 1000));
  if (Number.isNaN(s)) return '-';
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 2)))
      .join('')
      .trimEnd(),
  );
}

function summaryLines(origin: OriginObject, view: SidecarView, now: number, style: Style): string[] {
  const { metadata, spec } = origin;
  const st = origin.status;
  const up = spec.upstream;
  const colour =
    view.reachable === 'True' ? style.green : view.reachable === 'False' ? style.red : style.yellow;
  const tls = up.tls?.enabled === true ? ' (TLS)' : '';
  const backups = (up.backups?.length ?? 0) > 0 ? ` +${up.backups?.length} backup` : '';
  const out = [
    style.bold(
      `Origin ${metadata.namespace ?? 'default'}/${metadata.name} → ${up.host}:${up.port}${tls}${backups}`,
    ),
    `  Reachable: ${colour(view.reachable)}${view.cause === null ? '' : `   Cause: ${colour(view.cause)}`}   Pods reachable: ${view.podsSummary ?? '-'}`,
  ];
  const conditions = st?.conditions ?? [];
  if (conditions.length > 0) {
    const shown = conditions.map(
      (c) => `${c.type}=${c.status} (${c.reason}, ${age(c.lastTransitionTime, now)})`,
    );
    out.push(`  Conditions: ${shown.join(', ')}`);
  }
  if (view.hint !== null) out.push(`  Hint: ${view.hint}`);
  const lf = st?.lastFailure;
  if (lf !== undefined) {
    const where = lf.address === undefined ? '' : ` ${lf.address}`;
    out.push(`  Last failure: pod ${lf.pod}: ${lf.statusCode} ${lf.cause}${where}, ${age(lf.time, now)} ago`);
  }
  out.push(...vantageLines(st, now, style));
  const ni = st?.notInjected;
  if (ni !== undefined && ni.count > 0) {
    out.push(`  Not injected: ${ni.count} pod(s) (${ni.samplePods.join(', ')}): ${ni.hint}`);
  }
  if (st?.observedGeneration !== undefined && st.observedGeneration !== metadata.generation) {
    out.push(
      style.yellow(
        `  Status is of generation ${st.observedGeneration}; the spec is at ${metadata.generation ?? '?'}`,
      ),
    );
  }
  return out;
}

/** Where the failure is (triangulation) and what the operator saw from its own pod. */
export function vantageLines(st: OriginStatus | undefined, now: number, style: Style): string[] {
  const out: string[] = [];
  const t = st?.triangulation;
  if (t !== undefined && t.scope !== 'None') {
    out.push(`  Scope: ${style.bold(t.scope)}: ${t.summary}`);
    for (const r of t.reasoning) out.push(style.dim(`    - ${r}`));
  }
  const p = st?.operatorProbe;
  if (p !== undefined) {
    const colour =
      p.result === 'Reachable' ? style.green : p.result === 'Unreachable' ? style.red : style.yellow;
    const cause = p.cause === undefined ? '' : ` ${p.cause}`;
    out.push(
      `  Operator probe: ${colour(`${p.result}${cause}`)} from ${p.from}, ${age(p.time, now)} ago (${p.reason}): ${p.summary}`,
    );
    for (const step of p.steps) out.push(style.dim(`    ${step}`));
  }
  return out;
}

function podTable(view: SidecarView, reports: readonly OriginReport[], now: number): string[] {
  const rows = [
    ['POD', 'NODE', 'HEALTH', 'BY', 'CAUSE', 'SINCE', 'FAILURES', 'LAST FAILURE'],
    ...view.pods.map((p) => {
      const report = reports.find((r) => r.status.podName === p.pod)?.status;
      const last = report?.lastFailure;
      const lastText =
        last === undefined
          ? '-'
          : [String(last.statusCode), last.address, `${age(last.time, now)} ago`]
              .filter((x) => x !== undefined)
              .join(' ');
      const by = report?.source === undefined ? '-' : report.source.toLowerCase();
      return [
        p.pod,
        report?.nodeName ?? '-',
        p.health,
        by,
        p.cause ?? '-',
        age(p.since, now),
        String(p.failures),
        lastText,
      ];
    }),
  ];
  return table(rows).map((l) => `  ${l}`);
}

/** The status of one Origin and its pods, for people. */
export function renderOriginStatus(
  origin: OriginObject,
  reports: readonly OriginReport[],
  now: number,
  style: Style,
): string[] {
  const view = sidecarView(origin, reports);
  const out = summaryLines(origin, view, now, style);
  if (view.pods.length === 0) {
    out.push(style.dim('  No pod reports yet: no injected pod has served a request, or none is selected.'));
    return out;
  }
  return [...out, '', ...podTable(view, reports, now)];
}
