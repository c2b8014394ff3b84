// The human output of a diagnosis: a header, each phase's steps as they come
// (one line per server or address: ✓/✗, where, time, what happened), then the
// verdict with its evidence, fix and docs link, the warnings and what this
// vantage point cannot see. Pure: colours come in as a Style (none off a TTY).
import { type Plan, sniOf } from './plan.ts';
import type { Diagnosis, Finding, Step } from './schema.ts';

export interface Style {
  readonly bold: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly red: (s: string) => string;
  readonly green: (s: string) => string;
  readonly yellow: (s: string) => string;
}

const id = (s: string) => s;
export const PLAIN: Style = { bold: id, dim: id, red: id, green: id, yellow: id };
const sgr = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;
export const ANSI: Style = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
};

const ms = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

/** The first lines: what is diagnosed, how, and from where. */
export function renderHeader(plan: Plan, inCluster: boolean, style: Style): string[] {
  const up = plan.targets[0];
  const tls = up?.tls === undefined ? '' : ' over TLS';
  const backups = plan.targets.length > 1 ? ` (+${plan.targets.length - 1} backup)` : '';
  const what =
    plan.origin === null
      ? `${plan.input}${tls}`
      : `Origin ${plan.origin.namespace}/${plan.origin.name}: ${up?.host}:${up?.port}${tls}${backups}`;
  const insecure = plan.targets.some((t) => t.tls?.insecure === true);
  return [
    style.bold(`Diagnosing ${what}`),
    style.dim(
      `  connect timeout ${ms(plan.connectTimeoutMs)}, response timeout ${ms(plan.responseTimeoutMs)}; from ${inCluster ? 'a pod in the cluster' : 'this machine'}`,
    ),
    ...(insecure
      ? [
          style.yellow(
            '  ! certificate verification is not enforced: every certificate problem is still shown below',
          ),
        ]
      : []),
  ];
}

function phaseTitle(step: Step, plan: Plan): string {
  const target = plan.targets[step.target];
  switch (step.phase) {
    case 'dns': {
      const d = step.dns;
      const search =
        d === undefined || d.search.length === 0 ? '' : ` (search ${d.search.join(' ')}, ndots ${d.ndots})`;
      return `DNS   ${target?.host ?? ''}${search}`;
    }
    case 'tcp':
      return `TCP   port ${target?.port ?? ''}`;
    case 'tls': {
      const sni = target === undefined ? undefined : sniOf(target);
      return `TLS   ${sni === undefined ? 'no SNI (IP address)' : `SNI ${sni}`}, verified against ${target?.tls?.trust ?? 'system roots'}`;
    }
    case 'http':
      return `HTTP  GET ${plan.path}, Host ${plan.hostHeader}`;
  }
}

/** Turns steps into lines as they arrive, with a title whenever the phase (or the target) changes. */
export class StepPrinter {
  #last = '';
  readonly #plan: Plan;
  readonly #style: Style;

  constructor(plan: Plan, style: Style) {
    this.#plan = plan;
    this.#style = style;
  }

  lines(step: Step): string[] {
    const out: string[] = [];
    const key = `${step.target}/${step.phase}`;
    if (key !== this.#last) {
      if (step.target > 0 && !this.#last.startsWith(`${step.target}/`)) {
        const t = this.#plan.targets[step.target];
        out.push('', this.#style.bold(`Backup ${step.target}: ${t?.host}:${t?.port}`));
      } else if (this.#last === '') out.push('');
      out.push(this.#style.bold(phaseTitle(step, this.#plan)));
      this.#last = key;
    }
    const mark = step.ok ? this.#style.green('✓') : this.#style.red('✗');
    const where = (step.address ?? 'sidecar resolver').padEnd(24);
    const time = `${Math.round(step.elapsedMs)} ms`.padStart(8);
    out.push(`  ${mark} ${where}${this.#style.dim(time)}  ${step.detail}`);
    return out;
  }
}

function findingLines(f: Finding, style: Style): string[] {
  return [
    `  ${style.yellow('!')} ${f.summary}`,
    ...(f.fix === null ? [] : [`    fix: ${f.fix}`]),
    ...f.evidence.map((e) => style.dim(`    ${e}`)),
  ];
}

/** The verdict block: cause and answer, what is wrong, the fix, the evidence, the docs; then warnings and limits. */
export function renderVerdict(d: Diagnosis, style: Style): string[] {
  const v = d.verdict;
  const out: string[] = [''];
  if (d.reachable) {
    out.push(
      style.green(
        style.bold(`✓ Reachable${v.source === 'sidecars' ? " (the Origin's sidecars' view)" : ''}`),
      ),
    );
    out.push(`  ${v.summary}`);
  } else if (v.cause === null) {
    out.push(style.yellow(style.bold('? Cannot tell from here')), `  ${v.summary}`);
  } else {
    const params = [
      v.rcode === undefined ? '' : `rcode=${v.rcode}`,
      v.alertId === undefined ? '' : `alert-id=${v.alertId}`,
    ]
      .filter((p) => p !== '')
      .join(' ');
    const answer = v.statusCode === null ? '' : ` → the sidecar answers ${v.statusCode}`;
    out.push(style.red(style.bold(`✗ ${v.cause}${params === '' ? '' : ` (${params})`}${answer}`)));
    out.push(`  ${v.summary}`);
  }
  if (v.fix !== null) out.push(`  ${style.bold('Fix:')} ${v.fix}`);
  if (v.evidence.length > 0)
    out.push(`  ${style.bold('Evidence:')}`, ...v.evidence.map((e) => style.dim(`    ${e}`)));
  if (v.docs !== null) out.push(`  ${style.bold('Docs:')} ${v.docs}`);
  if (v.warnings.length > 0)
    out.push('', style.bold('Warnings'), ...v.warnings.flatMap((w) => findingLines(w, style)));
  if (d.vantage.limits.length > 0) {
    out.push('', style.bold('What this run cannot see'), ...d.vantage.limits.map((l) => `  - ${l}`));
  }
  return out;
}

/** The whole diagnosis as text (what the command prints when nothing streams). */
export function renderDiagnosis(d: Diagnosis, plan: Plan, style: Style): string {
  const printer = new StepPrinter(plan, style);
  return [
    ...renderHeader(plan, d.vantage.inCluster, style),
    ...d.steps.flatMap((s) => printer.lines(s)),
    ...renderVerdict(d, style),
  ].join('\n');
}
