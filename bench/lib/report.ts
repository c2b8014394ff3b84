// Turns measurements into the targets of issue 2 (as ratios within the same run), a console
// table, the JSON record and the markdown summary.
import type { ScenarioResult } from './failures.ts';
import type { FixedRateResult } from './fixed-rate.ts';
import type { SubjectId } from './subjects.ts';
import type { WsPathResult } from './websocket.ts';
import type { WrkResult } from './wrk.ts';

export interface SubjectResult {
  id: SubjectId;
  label: string;
  skipped?: string;
  /** spawn → first proxied 200 with the origin's body, ms. */
  readyMs?: number;
  /** Server and Via headers of that first proxied answer: shows which process answered. */
  readyAnsweredBy?: { server: string; via: string };
  /** spawn → /readyz 200 (originguard only), ms. */
  readyzMs?: number;
  idleRssMb?: number;
  loadedRssMb?: number;
  saturation?: WrkResult & {
    /** CPU used by the proxy process group during the run, in cores. */
    proxyCores: number;
    /** Busy fraction of each CPU during the run (all processes on the machine). */
    cpuBusy: number[];
  };
  fixedRate?: FixedRateResult;
  /** Every round's value; saturation and fixedRate hold the median round. */
  rounds?: { requestsPerSec: number[]; fixedRateP99Ms: number[] };
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  /** undefined: could not be measured in this run. */
  met?: boolean;
}

export interface Results {
  date: string;
  git: { commit: string; dirty: boolean };
  machine: { cpus: number; model: string; kernel: string; loadavgStart: number[]; loadavgEnd: number[] };
  node: string;
  tools: { name: string; version: string }[];
  pinning: { enabled: boolean; reason: string };
  settings: Record<string, string | number>;
  subjects: SubjectResult[];
  failures: ScenarioResult[];
  websocket: WsPathResult[];
  targets: Target[];
  warnings: string[];
}

/** Bytes as MB with one decimal, as the results record RSS. */
export const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

/** The round with the median value (the lower middle one for an even count). */
export function medianBy<T>(items: readonly T[], key: (t: T) => number): T | undefined {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Fixed digits without trailing zeros after the decimal point (never strips an integer's zeros). */
function f(v: number | undefined, digits = 2): string {
  if (v === undefined || Number.isNaN(v)) return '–';
  const text = v.toFixed(digits);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}
const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${f(v, 3)} ms`);

export function computeTargets(
  subjects: readonly SubjectResult[],
  failures: readonly ScenarioResult[],
  websocket: readonly WsPathResult[] = [],
): Target[] {
  const by = (id: SubjectId) => subjects.find((s) => s.id === id && !s.skipped);
  const og = by('originguard');
  const nginx = by('nginx');
  const fhp = by('fastify-http-proxy');
  const t: Target[] = [];
  const ratio = (name: string, other: SubjectResult | undefined, min: number) => {
    const a = og?.saturation?.requestsPerSec;
    const b = other?.saturation?.requestsPerSec;
    const r = a !== undefined && b ? a / b : undefined;
    t.push({
      name,
      goal: `≥ ${min}×`,
      value: r === undefined ? '–' : `${f(r)}× (${a} / ${b} req/s)`,
      ...(r === undefined ? {} : { met: r >= min }),
    });
  };
  ratio('throughput vs @fastify/http-proxy', fhp, 1.2);
  ratio('throughput vs nginx', nginx, 0.45);

  const p99og = og?.fixedRate?.serviceMs.p99;
  const p99ng = nginx?.fixedRate?.serviceMs.p99;
  const d = p99og !== undefined && p99ng !== undefined ? p99og - p99ng : undefined;
  t.push({
    name: 'p99 at 2,000 req/s vs nginx',
    goal: '≤ +1 ms',
    value: d === undefined ? '–' : `${d >= 0 ? '+' : ''}${f(d, 3)} ms (${ms(p99og)} vs ${ms(p99ng)})`,
    ...(d === undefined ? {} : { met: d <= 1 }),
  });

  const rss = og?.idleRssMb;
  t.push({
    name: 'idle RSS',
    goal: '≤ 60 MB',
    value: rss === undefined ? '–' : `${f(rss, 1)} MB`,
    ...(rss === undefined ? {} : { met: rss <= 60 }),
  });

  const ready = og?.readyzMs;
  t.push({
    name: 'start → ready (/readyz 200)',
    goal: '≤ 300 ms',
    value: ready === undefined ? '–' : ms(ready),
    ...(ready === undefined ? {} : { met: ready <= 300 }),
  });

  const ref = failures.find((s) => s.scenario === 'refused' && !s.skipped);
  const all531 = (s: ScenarioResult | undefined) =>
    s?.statuses !== undefined && Object.keys(s.statuses).every((k) => k === '531');
  t.push({
    name: 'refused → 531 after the refusal (p99)',
    goal: '≤ 1 ms, all 531',
    value: ref?.delta ? `${ms(ref.delta.p99)} (statuses ${JSON.stringify(ref.statuses)})` : '–',
    ...(ref?.delta ? { met: ref.delta.p99 <= 1 && all531(ref) } : {}),
  });

  const ct = failures.find((s) => s.scenario === 'connect-timeout' && !s.skipped);
  t.push({
    name: 'connect timeout → 531 over configured (first request)',
    goal: "≤ 5 ms, 531 (issue: 'a few ms')",
    value: ct?.delta ? `+${ms(ct.delta.first)} (status ${Object.keys(ct.statuses ?? {}).join(',')})` : '–',
    ...(ct?.delta ? { met: ct.delta.first <= 5 && all531(ct) } : {}),
  });
  return [...t, ...wsTargets(websocket)];
}

/** Targets of issue 14: WebSocket messages per second against nginx, memory per idle tunnel. */
function wsTargets(websocket: readonly WsPathResult[]): Target[] {
  if (websocket.length === 0) return [];
  const og = websocket.find((p) => p.id === 'originguard' && !p.skipped);
  const ng = websocket.find((p) => p.id === 'nginx' && !p.skipped);
  const a = og?.saturation?.messagesPerSec;
  const b = ng?.saturation?.messagesPerSec;
  const r = a !== undefined && b ? a / b : undefined;
  const kb = og?.idle?.perTunnelKb;
  return [
    {
      name: 'WebSocket messages/s vs nginx',
      goal: '≥ 0.8×',
      value: r === undefined ? '–' : `${f(r)}× (${a} / ${b} msg/s)`,
      ...(r === undefined ? {} : { met: r >= 0.8 }),
    },
    {
      name: 'memory per idle tunnel',
      goal: '≤ 20 KB',
      value:
        kb === undefined
          ? '–'
          : `${f(kb, 1)} KB (${og?.idle?.tunnels} tunnels, nginx ${f(ng?.idle?.perTunnelKb, 1)} KB)`,
      ...(kb === undefined ? {} : { met: kb <= 20 }),
    },
  ];
}

function wsRows(paths: readonly WsPathResult[]): string[][] {
  const head = [
    'websocket path',
    'msg/s',
    'sat RTT p50',
    'sat RTT p99',
    '1-conn RTT p50',
    '1-conn RTT p99',
    'proxy CPU',
    'CPU per msg',
    'idle tunnels',
    'RSS before → after',
    'per tunnel',
  ];
  const rows = paths.map((p) => {
    if (p.skipped) return [p.label, `skipped: ${p.skipped.split('\n')[0]?.slice(0, 100)}`];
    const s = p.saturation;
    const l = p.latency;
    const i = p.idle;
    return [
      p.label,
      s ? String(s.messagesPerSec) : '–',
      ms(s?.rttMs.p50),
      ms(s?.rttMs.p99),
      ms(l?.rttMs.p50),
      ms(l?.rttMs.p99),
      s && p.id !== 'direct' ? `${f(s.proxyCores)} cores` : '–',
      // Proxy CPU time per message echoed: the cost that matters when the load side is the limit.
      s && p.id !== 'direct' && s.messagesPerSec > 0
        ? `${f((s.proxyCores / s.messagesPerSec) * 1e6, 1)} µs`
        : '–',
      i ? String(i.tunnels) : '–',
      i ? `${f(i.rssBeforeMb, 1)} → ${f(i.rssAfterMb, 1)} MB` : '–',
      i ? `${f(i.perTunnelKb, 1)} KB` : '–',
    ];
  });
  return [head, ...rows];
}

function wsRoundLines(paths: readonly WsPathResult[]): string[] {
  return paths
    .filter((p) => p.rounds && p.rounds.messagesPerSec.length > 1)
    .map(
      (p) =>
        `websocket ${p.label}: msg/s ${p.rounds?.messagesPerSec.join(' / ')}; 1-conn RTT p99 ${p.rounds?.latencyP99Ms.map((v) => f(v, 3)).join(' / ')} ms`,
    );
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')).join('\n');
}

function subjectRows(subjects: readonly SubjectResult[]): string[][] {
  const head = [
    'path',
    'req/s',
    'sat p50',
    'sat p99',
    '2k p50',
    '2k p99',
    '2k p99 corr.',
    'idle RSS',
    'loaded RSS',
    'ready',
    'proxy CPU',
  ];
  const rows = subjects.map((s) => {
    if (s.skipped) return [s.label, `skipped: ${s.skipped.split('\n')[0]?.slice(0, 100)}`];
    const sat = s.saturation;
    const fr = s.fixedRate;
    const rss = (v: number | undefined) => (v === undefined ? '–' : `${f(v, 1)} MB`);
    const ready =
      s.readyMs === undefined
        ? '–'
        : `${f(s.readyMs, 0)} ms${s.readyzMs === undefined ? '' : ` (readyz ${f(s.readyzMs, 0)})`}`;
    return [
      s.label,
      sat ? String(sat.requestsPerSec) : '–',
      ms(sat?.latencyMs.p50),
      ms(sat?.latencyMs.p99),
      ms(fr?.serviceMs.p50),
      ms(fr?.serviceMs.p99),
      ms(fr?.correctedMs.p99),
      rss(s.idleRssMb),
      rss(s.loadedRssMb),
      ready,
      sat && s.id !== 'direct' ? `${f(sat.proxyCores)} cores` : '–',
    ];
  });
  return [head, ...rows];
}

/** `error=x` of a Proxy-Status header, with the DNS rcode when given. */
function cause(proxyStatus: string): string {
  const error = /;\s*error=([^;\s]+)/.exec(proxyStatus)?.[1];
  const rcode = /;\s*rcode="?([^";]+)/.exec(proxyStatus)?.[1];
  return error ? `${error}${rcode ? ` ${rcode}` : ''}` : '–';
}

function failureRows(failures: readonly ScenarioResult[]): string[][] {
  const head = [
    'originguard failure',
    'statuses',
    'cause (Proxy-Status)',
    'time-to-531 first/p50/p99',
    'delta p50/p99',
    'delta over',
  ];
  const rows = failures.map((s) =>
    s.skipped
      ? [s.scenario, `skipped: ${s.skipped.split('\n')[0]?.slice(0, 100)}`]
      : [
          s.scenario,
          JSON.stringify(s.statuses ?? {}),
          cause(s.firstProxyStatus ?? ''),
          s.timeTo531
            ? `${f(s.timeTo531.first, 3)} / ${f(s.timeTo531.p50, 3)} / ${f(s.timeTo531.p99, 3)} ms (n=${s.timeTo531.n})`
            : '–',
          s.delta ? `${f(s.delta.p50, 3)} / ${f(s.delta.p99, 3)} ms` : '–',
          s.deltaOver ?? '',
        ],
  );
  return [head, ...rows];
}

function roundLines(subjects: readonly SubjectResult[]): string[] {
  return subjects
    .filter((s) => s.rounds && s.rounds.requestsPerSec.length > 1)
    .map(
      (s) =>
        `${s.label}: req/s ${s.rounds?.requestsPerSec.join(' / ')}; 2k p99 ${s.rounds?.fixedRateP99Ms.map((v) => f(v, 3)).join(' / ')} ms`,
    );
}

const verdict = (m: boolean | undefined) => (m === undefined ? 'not measured' : m ? 'met' : 'NOT MET');

export function consoleReport(r: Results): string {
  const targets = [
    ['target', 'goal', 'value', ''],
    ...r.targets.map((t) => [t.name, t.goal, t.value, verdict(t.met)]),
  ];
  return [
    '',
    table(subjectRows(r.subjects)),
    ...roundLines(r.subjects).map((l) => `  rounds, ${l}`),
    ...(r.failures.length > 0 ? ['', table(failureRows(r.failures))] : []),
    ...(r.websocket.length > 0
      ? ['', table(wsRows(r.websocket)), ...wsRoundLines(r.websocket).map((l) => `  rounds, ${l}`)]
      : []),
    '',
    table(targets),
    ...(r.warnings.length > 0 ? ['', ...r.warnings.map((w) => `warning: ${w}`)] : []),
    '',
  ].join('\n');
}

function mdTable(rows: string[][]): string {
  const width = rows[0]?.length ?? 0;
  const cell = (c: string) => c.replaceAll('|', '\\|');
  const line = (r: string[]) =>
    `| ${Array.from({ length: width }, (_, i) => cell(r[i] ?? '')).join(' | ')} |`;
  const [head, ...rest] = rows;
  return [line(head ?? []), `|${' --- |'.repeat(width)}`, ...rest.map(line)].join('\n');
}

export function markdownReport(r: Results, jsonName: string): string {
  const targets = [
    ['target', 'goal', 'value', 'result'],
    ...r.targets.map((t) => [t.name, t.goal, t.value, verdict(t.met)]),
  ];
  const notes = r.failures.flatMap((s) => (s.notes ?? []).map((n) => `- ${s.scenario}: ${n}`));
  const firsts = r.failures
    .filter((s) => s.firstProxyStatus)
    .map((s) => `- ${s.scenario}: \`Proxy-Status: ${s.firstProxyStatus}\``);
  return `# originguard benchmark — ${r.date}

Machine: ${r.machine.cpus} CPUs (${r.machine.model}), ${r.machine.kernel}; load average at start ${r.machine.loadavgStart.join(' ')}, at end ${r.machine.loadavgEnd.join(' ')}.
Node ${r.node}; ${r.tools.map((t) => t.version).join('; ')}. Commit ${r.git.commit}${r.git.dirty ? ' (with uncommitted changes)' : ''}.
Pinning: ${r.pinning.reason}.
Settings: ${Object.entries(r.settings)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}. Raw data: \`${jsonName}\`.

## Targets (ratios within this run)

${mdTable(targets)}

## Throughput, latency, memory, start

Saturation: wrk, 1 thread, keep-alive. 2k: open-loop fixed rate; "corr." is measured from when each request was due.
Proxy CPU: cores the proxy used during saturation (1 = it had CPU 1 to itself; much less means something else ran there).

${mdTable(subjectRows(r.subjects))}

Each path's value is its median round. All rounds:

${roundLines(r.subjects)
  .map((l) => `- ${l}`)
  .join('\n')}

## originguard: time to 531

${r.failures.length > 0 ? mdTable(failureRows(r.failures)) : 'Not run (--no-failures).'}

${[...firsts, ...notes].join('\n')}

## WebSocket tunnels

${
  r.websocket.length > 0
    ? `Origin: \`bench/servers/ws-echo-origin.ts\` (handshake, then echoes bytes). Load: \`bench/lib/ws-load.ts\`, 64-byte masked text frames, one in flight per connection; "1-conn" is a single connection. Idle tunnels: RSS of the proxy's process group with that many tunnels held open, against before. "CPU per msg": the proxy's CPU time per message echoed at saturation; while the proxy uses less than its core, the load side (CPU 0) limits msg/s and this column is the fairer comparison.

${mdTable(wsRows(r.websocket))}

${wsRoundLines(r.websocket)
  .map((l) => `- ${l}`)
  .join('\n')}`
    : 'Not run (--no-websocket).'
}
${r.warnings.length > 0 ? `\n## Warnings\n\n${r.warnings.map((w) => `- ${w}`).join('\n')}\n` : ''}`;
}
