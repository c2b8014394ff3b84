// The Grafana dashboard the chart installs (a ConfigMap Grafana's dashboard
// sidecar picks up, opt-in), as data. hack/generate-monitoring.ts writes it to
// charts/originguard/files/grafana-dashboard.json, which can also be imported by
// hand. Every metric it queries is checked against docs/metrics.md and the code
// by test/unit/monitoring.test.ts.

interface Target {
  expr: string;
  legendFormat: string;
  /** An instant query shown as a table. */
  table?: true;
}

interface PanelSpec {
  title: string;
  description: string;
  type: 'timeseries' | 'stat' | 'table' | 'state-timeline';
  unit: string;
  targets: Target[];
  /** Grid width out of 24 (height is fixed per row). */
  width: number;
  stacked?: true;
}

interface RowSpec {
  title: string;
  height: number;
  panels: PanelSpec[];
}

const ORIGIN = 'origin=~"$origin"';
const RATE = '[$__rate_interval]';
const quantiles = (metric: string, by: string, filter: string): Target[] =>
  [0.5, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}_bucket${filter}${RATE})))`,
    legendFormat: `{{${by}}} p${q * 100}`,
  }));

const rows: RowSpec[] = [
  {
    title: 'Origins (from the operator)',
    height: 7,
    panels: [
      {
        title: 'Reachable',
        description:
          'Per Origin, whether its sidecars reach the origin (status.reachable): 1 reachable, 0 unreachable; no value while Unknown.',
        type: 'state-timeline',
        unit: 'bool_yes_no',
        width: 12,
        targets: [
          {
            expr: `max by (origin) (originguard_operator_origin_reachable{${ORIGIN}})`,
            legendFormat: '{{origin}}',
          },
        ],
      },
      {
        title: 'Current cause',
        description:
          'The cause most failing pods of each Origin report (the CAUSE column of kubectl get origins). See docs/causes.md for what to check.',
        type: 'table',
        unit: 'none',
        width: 12,
        targets: [
          {
            expr: `max by (origin, cause) (originguard_operator_origin_cause{${ORIGIN}})`,
            legendFormat: '{{origin}} {{cause}}',
            table: true,
          },
        ],
      },
      {
        title: 'Where it fails',
        description:
          'Per failing Origin, where its failure is (the SCOPE column of kubectl get origins -o wide): Origin (every pod and the operator fail), PodPath (the pods fail, the operator gets through), Nodes, Zones, SomePods, AllPods. kubectl describe origin shows the reasoning.',
        type: 'table',
        unit: 'none',
        width: 24,
        targets: [
          {
            expr: `max by (origin, scope) (originguard_operator_origin_scope{${ORIGIN}})`,
            legendFormat: '{{origin}} {{scope}}',
            table: true,
          },
        ],
      },
      {
        title: 'Pods by state',
        description:
          'Selected pods, those running the sidecar, those on the current spec, reaching and failing to reach the origin, and those left without the sidecar (restart their workload).',
        type: 'timeseries',
        unit: 'short',
        width: 24,
        targets: [
          {
            expr: `max by (origin, state) (originguard_operator_origin_pods{${ORIGIN}})`,
            legendFormat: '{{origin}} {{state}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Edge traffic (from the sidecars)',
    height: 8,
    panels: [
      {
        title: 'Requests by status class',
        description: 'Edge requests the sidecars answered, by status class; 531/536 are in 5xx.',
        type: 'timeseries',
        unit: 'reqps',
        width: 12,
        stacked: true,
        targets: [
          {
            expr: `sum by (origin, code_class) (rate(originguard_requests_total{${ORIGIN}}${RATE}))`,
            legendFormat: '{{origin}} {{code_class}}',
          },
        ],
      },
      {
        title: 'Upstream failures by cause',
        description: 'Requests that failed to reach or hear from the origin, by RFC 9209 cause.',
        type: 'timeseries',
        unit: 'reqps',
        width: 12,
        stacked: true,
        targets: [
          {
            expr: `sum by (origin, cause) (rate(originguard_upstream_failures_total{${ORIGIN}}${RATE}))`,
            legendFormat: '{{origin}} {{cause}}',
          },
        ],
      },
      {
        title: 'Connect time',
        description: 'Time to establish a connection to the origin (DNS, TCP, TLS), successful attempts.',
        type: 'timeseries',
        unit: 's',
        width: 8,
        targets: quantiles('originguard_upstream_connect_duration_seconds', 'origin', `{${ORIGIN}}`),
      },
      {
        title: 'Response time',
        description: 'Request received to first byte of the answer (the origin response or the error).',
        type: 'timeseries',
        unit: 's',
        width: 8,
        targets: quantiles('originguard_request_duration_seconds', 'origin', `{${ORIGIN}}`),
      },
      {
        title: 'Pods failing fast (ejected)',
        description:
          'Sidecars that ejected the origin after repeated connection failures: their requests get 531 at once while one trial request probes the origin.',
        type: 'timeseries',
        unit: 'short',
        width: 8,
        targets: [
          {
            expr: `sum by (origin) (originguard_origin_ejected{${ORIGIN}})`,
            legendFormat: '{{origin}}',
          },
        ],
      },
      {
        title: 'Health checks',
        description:
          'Active health checks of the sidecars, by result: success, failure, skipped (traffic reached the origin within the interval). Their rate is the load they put on each origin.',
        type: 'timeseries',
        unit: 'ops',
        width: 12,
        targets: [
          {
            expr: `sum by (origin, result) (rate(originguard_health_checks_total{${ORIGIN}}${RATE}))`,
            legendFormat: '{{origin}} {{result}}',
          },
        ],
      },
      {
        title: 'Health check failures by cause',
        description: 'What the checks find, by RFC 9209 cause: also while no request reaches the origin.',
        type: 'timeseries',
        unit: 'ops',
        width: 12,
        targets: [
          {
            expr: `sum by (origin, cause) (rate(originguard_health_check_failures_total{${ORIGIN}}${RATE}))`,
            legendFormat: '{{origin}} {{cause}}',
          },
        ],
      },
      {
        title: 'Report writes',
        description:
          'OriginReport writes by the sidecars, by namespace and result, and sidecars that cannot reach the API server (their reports wait).',
        type: 'timeseries',
        unit: 'ops',
        width: 24,
        targets: [
          {
            expr: `sum by (namespace, result) (rate(originguard_report_writes_total${RATE}))`,
            legendFormat: '{{namespace}} {{result}}',
          },
          {
            expr: 'count by (namespace) (originguard_kube_api_up == 0)',
            legendFormat: '{{namespace}} sidecars without API server',
          },
        ],
      },
    ],
  },
  {
    title: 'Operator',
    height: 7,
    panels: [
      {
        title: 'Leader',
        description: 'Replicas holding the leader Lease: must be 1.',
        type: 'stat',
        unit: 'short',
        width: 4,
        targets: [{ expr: 'sum(originguard_operator_leader)', legendFormat: 'leaders' }],
      },
      {
        title: 'Queue depth',
        description: 'Keys waiting or being processed, per controller.',
        type: 'timeseries',
        unit: 'short',
        width: 6,
        targets: [
          {
            expr: 'max by (controller) (originguard_operator_queue_depth)',
            legendFormat: '{{controller}}',
          },
        ],
      },
      {
        title: 'Reconcile time',
        description: 'Time one reconcile took, per controller.',
        type: 'timeseries',
        unit: 's',
        width: 7,
        targets: quantiles('originguard_operator_reconcile_duration_seconds', 'controller', ''),
      },
      {
        title: 'Webhook answer time',
        description:
          'Time to decide and answer one pod admission review (the API server waits at most the webhook timeout, 5 s by default).',
        type: 'timeseries',
        unit: 's',
        width: 7,
        targets: [0.5, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le) (rate(originguard_operator_webhook_review_duration_seconds_bucket${RATE})))`,
          legendFormat: `p${q * 100}`,
        })),
      },
      {
        title: 'Webhook decisions',
        description: 'Pod admission reviews by decision: injected, or why not.',
        type: 'timeseries',
        unit: 'ops',
        width: 12,
        stacked: true,
        targets: [
          {
            expr: `sum by (decision) (rate(originguard_operator_webhook_reviews_total${RATE}))`,
            legendFormat: '{{decision}}',
          },
        ],
      },
      {
        title: 'Reconciles and status writes',
        description: 'Reconciles by controller and result, and Origin status writes by result.',
        type: 'timeseries',
        unit: 'ops',
        width: 12,
        targets: [
          {
            expr: `sum by (controller, result) (rate(originguard_operator_reconciles_total${RATE}))`,
            legendFormat: '{{controller}} {{result}}',
          },
          {
            expr: `sum by (result) (rate(originguard_operator_status_writes_total${RATE}))`,
            legendFormat: 'status writes {{result}}',
          },
        ],
      },
    ],
  },
];

const DATASOURCE = { type: 'prometheus', uid: '$datasource' };

function panel(spec: PanelSpec, id: number, x: number, y: number, h: number): Record<string, unknown> {
  const custom =
    spec.type === 'timeseries'
      ? {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: spec.stacked ? 20 : 0,
          stacking: { mode: spec.stacked ? 'normal' : 'none' },
        }
      : {};
  return {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos: { h, w: spec.width, x, y },
    fieldConfig: { defaults: { unit: spec.unit, custom }, overrides: [] },
    options:
      spec.type === 'table'
        ? { showHeader: true }
        : {
            legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
            tooltip: { mode: 'multi' },
          },
    ...(spec.type === 'table'
      ? { transformations: [{ id: 'labelsToFields', options: { mode: 'columns' } }] }
      : {}),
    targets: spec.targets.map((t, i) => ({
      datasource: DATASOURCE,
      refId: String.fromCharCode(65 + i),
      expr: t.expr,
      legendFormat: t.legendFormat,
      ...(t.table ? { instant: true, range: false, format: 'table' } : { range: true }),
    })),
  };
}

/** Lays the rows out on Grafana's 24-column grid. */
function panels(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    for (const spec of row.panels) {
      if (x + spec.width > 24) {
        x = 0;
        y += row.height;
      }
      out.push(panel(spec, id++, x, y, row.height));
      x += spec.width;
    }
    y += row.height;
  }
  return out;
}

/** Every PromQL expression the dashboard runs. */
export function dashboardQueries(): string[] {
  return rows.flatMap((r) => r.panels.flatMap((p) => p.targets.map((t) => t.expr)));
}

export const DASHBOARD_UID = 'originguard-overview';

export function dashboard(): Record<string, unknown> {
  return {
    uid: DASHBOARD_UID,
    title: 'originguard',
    description:
      'Per Origin: reachability, cause, pods, edge traffic by status class, upstream failures by cause, latency, ejections and report writes; the operator: leader, queues, reconciles, webhook.',
    tags: ['originguard', 'kubernetes', 'edge'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    links: [
      {
        title: 'What each cause means',
        type: 'link',
        url: 'https://github.com/originguard/originguard/blob/main/docs/causes.md',
        targetBlank: true,
      },
    ],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
        },
        {
          name: 'origin',
          label: 'Origin',
          type: 'query',
          datasource: DATASOURCE,
          query: { query: 'label_values(originguard_operator_origin_pods, origin)', refId: 'origins' },
          definition: 'label_values(originguard_operator_origin_pods, origin)',
          includeAll: true,
          multi: true,
          allValue: '.+',
          current: { text: 'All', value: '$__all' },
          refresh: 2,
          sort: 1,
          hide: 0,
        },
      ],
    },
    annotations: { list: [] },
    panels: panels(),
  };
}
