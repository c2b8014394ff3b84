// The chart's alerting rules and Grafana dashboard: the files on disk are the
// generated ones, every metric they query exists in the code and in
// docs/metrics.md, and every runbook link lands on a section that exists.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alertAnchor, RUNBOOK_BASE, ruleGroups } from '../../hack/alerts.ts';
import { dashboard, dashboardQueries } from '../../hack/dashboard.ts';
import { DASHBOARD_FILE, dashboardJson, RULES_FILE, rulesYaml } from '../../hack/generate-monitoring.ts';
import { CAUSE_NAMES } from '../../src/api/causes.ts';
import { OperatorMetrics } from '../../src/operator/metrics.ts';
import { SidecarMetrics } from '../../src/sidecar/metrics.ts';
import { documented, namedInSources, registered } from '../support/metric-names.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** Metric names a PromQL text (or an annotation template holding queries) reads, histogram series folded. */
function metricsIn(text: string): string[] {
  const names = [...text.matchAll(/\b((?:originguard|apiserver)_[a-z_]+)\b/g)].map((m) => m[1] as string);
  // kube-apiserver's counters may end in _count; ours only as histogram series.
  return [
    ...new Set(names.map((n) => (n.startsWith('originguard_') ? n.replace(/_(bucket|sum|count)$/, '') : n))),
  ];
}

/** Every metric the code registers (both processes, and any named in src/). */
async function codeMetrics(): Promise<Set<string>> {
  return new Set([
    ...(await registered(new SidecarMetrics().registry, 'originguard_')),
    ...(await registered(new OperatorMetrics().registry, 'originguard_operator_')),
    ...namedInSources(),
  ]);
}

// kube-apiserver's own metrics: test/cluster/monitoring.test.ts checks them against a real API server.
const API_SERVER_METRICS = [
  'apiserver_admission_webhook_fail_open_count',
  'apiserver_admission_webhook_rejection_count',
];

describe('generated monitoring files', () => {
  it(`${RULES_FILE} is up to date with hack/alerts.ts (else run npm run generate:monitoring)`, () => {
    expect(read(RULES_FILE)).toBe(rulesYaml());
  });

  it(`${DASHBOARD_FILE} is up to date with hack/dashboard.ts (else run npm run generate:monitoring)`, () => {
    expect(read(DASHBOARD_FILE)).toBe(dashboardJson());
  });
});

describe('Grafana dashboard', () => {
  it('queries only metrics that the code registers and docs/metrics.md documents', async () => {
    const code = await codeMetrics();
    const used = [...new Set(dashboardQueries().flatMap(metricsIn))];
    expect(used.length).toBeGreaterThan(15);
    expect(used.filter((m) => !code.has(m))).toEqual([]);
    expect(used.filter((m) => !documented(m))).toEqual([]);
  });

  it('covers what the issue asks: per Origin traffic, causes, latency, ejections, reports; operator queue, reconcile, webhook', () => {
    const used = new Set(dashboardQueries().flatMap(metricsIn));
    for (const m of [
      'originguard_requests_total',
      'originguard_upstream_failures_total',
      'originguard_upstream_connect_duration_seconds',
      'originguard_request_duration_seconds',
      'originguard_origin_ejected',
      'originguard_report_writes_total',
      'originguard_operator_queue_depth',
      'originguard_operator_reconcile_duration_seconds',
      'originguard_operator_webhook_review_duration_seconds',
      'originguard_operator_origin_reachable',
      'originguard_operator_origin_cause',
      'originguard_operator_origin_pods',
    ])
      expect(used, m).toContain(m);
  });

  it('lays its panels on the 24-column grid without overlap, each with a unique id and a query', () => {
    const panels = dashboard().panels as {
      id: number;
      type: string;
      gridPos: { x: number; y: number; w: number; h: number };
      targets?: unknown[];
    }[];
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length, String(p.id)).toBeGreaterThan(0);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `panel ${p.id} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });
});

describe('alerting rules', () => {
  const rules = ruleGroups().flatMap((g) => g.rules);

  it('read only metrics that the code registers and docs/metrics.md documents, or the API server exports', async () => {
    const code = await codeMetrics();
    const used = [
      ...new Set(rules.flatMap((r) => metricsIn([r.expr, ...Object.values(r.annotations)].join('\n')))),
    ];
    const ours = used.filter((m) => !API_SERVER_METRICS.includes(m));
    expect(ours.filter((m) => !code.has(m))).toEqual([]);
    expect(ours.filter((m) => !documented(m))).toEqual([]);
    expect(used).toEqual(expect.arrayContaining(API_SERVER_METRICS));
  });

  it('carry a summary, a description, the cause, the hint and a runbook link', () => {
    for (const r of rules) {
      for (const [key, value] of Object.entries(r.annotations))
        expect(value, `${r.alert} ${key}`).not.toBe('');
      expect(r.annotations.runbook_url, r.alert).toContain(RUNBOOK_BASE);
    }
  });

  it('link their runbooks to sections of docs/operations.md and docs/causes.md that exist', () => {
    const operations = read('docs/operations.md');
    const headings = new Set(
      [...operations.matchAll(/^#+ (.+)$/gm)].map((m) =>
        (m[1] as string)
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const r of rules) {
      const anchor = /operations\.md#([a-z0-9-]+)/.exec(r.annotations.runbook_url)?.[1];
      if (anchor !== undefined) {
        expect(anchor).toBe(alertAnchor(r.alert));
        expect(headings, `docs/operations.md has no section for ${r.alert}`).toContain(anchor);
      }
      // Every alert is explained in docs/operations.md, whatever its runbook.
      expect(headings, `docs/operations.md does not explain ${r.alert}`).toContain(alertAnchor(r.alert));
    }
    const causes = read('docs/causes.md');
    for (const cause of CAUSE_NAMES) expect(causes, cause).toContain(`<a id="${cause}"></a>`);
  });
});
