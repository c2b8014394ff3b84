// The chart's alerting rules (charts/originguard/files/prometheus-rules.yaml, the
// file the PrometheusRule carries) checked and unit-tested by Prometheus's own
// promtool: series go in, the alerts Prometheus would fire come out, with the
// exact labels and annotations a notification shows. promtool is built from its
// Go module by hack/test-binaries.sh --promtool (CI does); without it these tests
// are skipped with the reason printed.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { RUNBOOK_BASE } from '../../hack/alerts.ts';
import { RULES_FILE } from '../../hack/generate-monitoring.ts';
import { CAUSE_NAMES, CAUSES, type Cause } from '../../src/api/causes.ts';
import { POD_WEBHOOK } from '../../src/operator/names.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;
const rules = join(repo, RULES_FILE);

const promtool = await run('bash', [join(repo, 'hack/test-binaries.sh'), '--promtool', '--check']).then(
  (r) => r.stdout.trim(),
  () => undefined,
);
if (promtool === undefined)
  console.warn('[alerts] promtool is not built: run `bash hack/test-binaries.sh --promtool` (needs Go)');

interface Series {
  series: string;
  values: string;
}
interface ExpectedAlert {
  exp_labels: Record<string, string>;
  exp_annotations?: Record<string, string>;
}
interface AlertCheck {
  eval_time: string;
  alertname: string;
  exp_alerts: ExpectedAlert[];
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'og-promtool-'));
});
afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** Runs `promtool test rules` on one test group over the chart's rules; fails with promtool's diff. */
async function promtoolTest(input: Series[], checks: AlertCheck[]): Promise<void> {
  const file = join(dir, `test-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    file,
    stringify({
      rule_files: [rules],
      evaluation_interval: '1m',
      tests: [{ interval: '1m', input_series: input, alert_rule_test: checks }],
    }),
  );
  const result = await run(promtool as string, ['test', 'rules', file]).then(
    (r) => ({ ok: true, out: r.stdout }),
    (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
  expect(result.ok, result.out).toBe(true);
}

const describeCommand = (origin: string) => {
  const [ns, name] = origin.split('/');
  return `\`kubectl describe origin -n ${ns} ${name}\``;
};

/** What a notification of OriginguardOriginUnreachable says. */
const unreachable = (origin: string, cause: Cause) => ({
  exp_labels: { severity: 'critical', origin, namespace: origin.split('/')[0] as string },
  exp_annotations: {
    summary: `Origin ${origin} is unreachable from its pods (${cause}).`,
    description: `The sidecars of Origin ${origin} have failed to reach the origin for 5 minutes, with cause ${cause}: edge requests are answered 531/536. ${describeCommand(origin)} shows the failing pods by cause and the last failure.`,
    cause,
    hint: CAUSES[cause].hint,
    runbook_url: `${RUNBOOK_BASE}/causes.md#${cause}`,
  },
});

const operations = (alert: string) => `${RUNBOOK_BASE}/operations.md#${alert.toLowerCase()}`;

describe.skipIf(promtool === undefined)('alerting rules, with promtool', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run(promtool as string, ['check', 'rules', rules]);
    expect(stdout).toMatch(/SUCCESS: 9 rules found/);
  });

  it('OriginguardOriginUnreachable: after 5 minutes unreachable, with the cause and its hint, through a leader change', async () => {
    await promtoolTest(
      [
        // The leader op-a publishes the status, then op-b takes over at 5m.
        {
          series: 'originguard_operator_origin_reachable{origin="web/shop",pod="op-a"}',
          values: '1 1 0 0 0 stale',
        },
        { series: 'originguard_operator_origin_reachable{origin="web/shop",pod="op-b"}', values: '_x5 0x10' },
        {
          series:
            'originguard_operator_origin_cause{origin="web/shop",cause="connection_refused",pod="op-a"}',
          values: '_ _ 1 1 1 stale',
        },
        {
          series:
            'originguard_operator_origin_cause{origin="web/shop",cause="connection_refused",pod="op-b"}',
          values: '_x5 1x10',
        },
      ],
      [
        { eval_time: '6m', alertname: 'OriginguardOriginUnreachable', exp_alerts: [] },
        {
          eval_time: '8m',
          alertname: 'OriginguardOriginUnreachable',
          exp_alerts: [unreachable('web/shop', 'connection_refused')],
        },
      ],
    );
  });

  it('OriginguardOriginUnreachable: not while reachability is Unknown (no series) or the origin is reachable', async () => {
    await promtoolTest(
      [
        { series: 'originguard_operator_origin_pods{origin="web/new",state="selected"}', values: '3x20' },
        { series: 'originguard_operator_origin_reachable{origin="web/ok",pod="op-a"}', values: '1x20' },
      ],
      [{ eval_time: '15m', alertname: 'OriginguardOriginUnreachable', exp_alerts: [] }],
    );
  });

  it('every cause gets its own hint and runbook in the notification', async () => {
    const input = CAUSE_NAMES.flatMap((cause) => [
      { series: `originguard_operator_origin_reachable{origin="causes/${cause}"}`, values: '0x10' },
      {
        series: `originguard_operator_origin_cause{origin="causes/${cause}",cause="${cause}"}`,
        values: '1x10',
      },
    ]);
    await promtoolTest(input, [
      {
        eval_time: '8m',
        alertname: 'OriginguardOriginUnreachable',
        exp_alerts: CAUSE_NAMES.map((cause) => unreachable(`causes/${cause}`, cause)),
      },
    ]);
  });

  it('a cause change keeps the one Unreachable alert, now with the new cause, and raises OriginguardOriginCauseChanged for 10 minutes', async () => {
    const origin = 'shop/web';
    await promtoolTest(
      [
        { series: `originguard_operator_origin_reachable{origin="${origin}"}`, values: '0x30' },
        {
          series: `originguard_operator_origin_cause{origin="${origin}",cause="connection_refused"}`,
          values: '1x9 stale',
        },
        {
          series: `originguard_operator_origin_cause{origin="${origin}",cause="dns_error"}`,
          values: '_x10 1x20',
        },
      ],
      [
        {
          eval_time: '12m',
          alertname: 'OriginguardOriginUnreachable',
          exp_alerts: [unreachable(origin, 'dns_error')],
        },
        {
          eval_time: '12m',
          alertname: 'OriginguardOriginCauseChanged',
          exp_alerts: [
            {
              exp_labels: { severity: 'info', origin, namespace: 'shop', cause: 'dns_error' },
              exp_annotations: {
                summary: `The cause of Origin ${origin} failures changed to dns_error.`,
                description: `Origin ${origin} still fails, now with cause dns_error (was connection_refused): what to fix has changed. ${describeCommand(origin)} shows the failing pods by cause and the last failure.`,
                cause: 'dns_error',
                hint: CAUSES.dns_error.hint,
                runbook_url: `${RUNBOOK_BASE}/causes.md#dns_error`,
              },
            },
          ],
        },
        { eval_time: '21m', alertname: 'OriginguardOriginCauseChanged', exp_alerts: [] },
      ],
    );
  });

  it('OriginguardOriginCauseChanged: not for the first failure, nor for a leader change with the same cause', async () => {
    await promtoolTest(
      [
        {
          series: 'originguard_operator_origin_cause{origin="web/a",cause="connection_timeout"}',
          values: '_x3 1x10',
        },
        {
          series: 'originguard_operator_origin_cause{origin="web/b",cause="dns_timeout",pod="op-a"}',
          values: '1x5 stale',
        },
        {
          series: 'originguard_operator_origin_cause{origin="web/b",cause="dns_timeout",pod="op-b"}',
          values: '_x6 1x10',
        },
      ],
      [
        { eval_time: '5m', alertname: 'OriginguardOriginCauseChanged', exp_alerts: [] },
        { eval_time: '8m', alertname: 'OriginguardOriginCauseChanged', exp_alerts: [] },
      ],
    );
  });

  it('OriginguardOriginPartiallyUnreachable: some pods failing for 10 minutes while others reach the origin', async () => {
    const origin = 'web/shop';
    await promtoolTest(
      [
        { series: `originguard_operator_origin_reachable{origin="${origin}"}`, values: '1x20' },
        { series: `originguard_operator_origin_pods{origin="${origin}",state="failing"}`, values: '2x20' },
        {
          series: `originguard_operator_origin_cause{origin="${origin}",cause="connection_timeout"}`,
          values: '1x20',
        },
      ],
      [
        { eval_time: '8m', alertname: 'OriginguardOriginPartiallyUnreachable', exp_alerts: [] },
        { eval_time: '8m', alertname: 'OriginguardOriginUnreachable', exp_alerts: [] },
        {
          eval_time: '12m',
          alertname: 'OriginguardOriginPartiallyUnreachable',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning', origin, namespace: 'web' },
              exp_annotations: {
                summary: `Some pods of Origin ${origin} cannot reach the origin (connection_timeout).`,
                description: `2 pods of Origin ${origin} have failed to reach the origin for 10 minutes, with cause connection_timeout, while others reach it: the path from those pods (their node, zone or network policy), not the origin itself, is the likely culprit. ${describeCommand(origin)} shows the failing pods by cause and the last failure.`,
                cause: 'connection_timeout',
                hint: CAUSES.connection_timeout.hint,
                runbook_url: `${RUNBOOK_BASE}/causes.md#connection_timeout`,
              },
            },
          ],
        },
      ],
    );
  });

  it('OriginguardOriginPathFromPodsFailing: the scope follows the pods (PodPath, Nodes, Zones) for 5 minutes, not Origin', async () => {
    const origin = 'web/shop';
    const path = 'web/blog';
    await promtoolTest(
      [
        { series: `originguard_operator_origin_scope{origin="${origin}",scope="Nodes"}`, values: '1x10' },
        {
          series: `originguard_operator_origin_cause{origin="${origin}",cause="connection_timeout"}`,
          values: '1x10',
        },
        { series: `originguard_operator_origin_scope{origin="${path}",scope="Origin"}`, values: '1x10' },
      ],
      [
        { eval_time: '4m', alertname: 'OriginguardOriginPathFromPodsFailing', exp_alerts: [] },
        {
          eval_time: '6m',
          alertname: 'OriginguardOriginPathFromPodsFailing',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning', origin, namespace: 'web', scope: 'Nodes' },
              exp_annotations: {
                summary: `The path from pods of Origin ${origin} fails, not the origin (Nodes, connection_timeout).`,
                description: `For 5 minutes the failures of Origin ${origin} (connection_timeout) follow the pods, not the origin: only the pods of some nodes fail, every pod there. Check what applies to those pods and not to the others: NetworkPolicies, node egress rules (firewall, security group, routes), their DNS settings. ${describeCommand(origin)} shows the failing pods by cause and the last failure.`,
                cause: 'connection_timeout',
                hint: CAUSES.connection_timeout.hint,
                runbook_url: operations('OriginguardOriginPathFromPodsFailing'),
              },
            },
          ],
        },
      ],
    );
  });

  it('OriginguardPodsNotInjected: selected pods without the sidecar for 15 minutes', async () => {
    const origin = 'web/shop';
    await promtoolTest(
      [
        {
          series: `originguard_operator_origin_pods{origin="${origin}",state="not_injected"}`,
          values: '0 0 3x20',
        },
        { series: 'originguard_operator_origin_pods{origin="web/ok",state="not_injected"}', values: '0x22' },
      ],
      [
        { eval_time: '10m', alertname: 'OriginguardPodsNotInjected', exp_alerts: [] },
        {
          eval_time: '18m',
          alertname: 'OriginguardPodsNotInjected',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning', origin, namespace: 'web' },
              exp_annotations: {
                summary: `3 pods selected by Origin ${origin} run without the sidecar.`,
                description: `3 pods that Origin ${origin} selects have run without the originguard sidecar for 15 minutes: their edge traffic is not proxied, classified or reported. ${describeCommand(origin)} names some of them.`,
                cause: 'pods_not_injected',
                hint: 'Pods are injected only when they are created: restart the workload (`kubectl rollout restart`). If new pods still come up without the sidecar, the injection webhook is failing (it fails open): see OriginguardOperatorWebhookFailing.',
                runbook_url: operations('OriginguardPodsNotInjected'),
              },
            },
          ],
        },
      ],
    );
  });

  it('OriginguardSidecarReportsFailing: only errors and no success, saying whether the API server is unreachable', async () => {
    const writes = (pod: string, result: string, values: string) => ({
      series: `originguard_report_writes_total{namespace="web",pod="${pod}",result="${result}"}`,
      values,
    });
    const apiUp = (pod: string, values: string) => ({
      series: `originguard_kube_api_up{namespace="web",pod="${pod}"}`,
      values,
    });
    const alert = (pod: string, cause: string, hint: string) => ({
      exp_labels: { severity: 'warning', namespace: 'web', pod },
      exp_annotations: {
        summary: `The originguard sidecar of pod web/${pod} cannot write its reports.`,
        description: `For 15 minutes every OriginReport write of the sidecar in web/${pod} has failed: the Origin status and \`kubectl get origins\` no longer show what this pod sees. It still proxies and answers 531/536.`,
        cause,
        hint,
        runbook_url: operations('OriginguardSidecarReportsFailing'),
      },
    });
    await promtoolTest(
      [
        // Refused by the API server (policy or RBAC): errors, no success, the API server answers.
        writes('refused', 'error', '0+2x20'),
        writes('refused', 'success', '5x20'),
        apiUp('refused', '1x20'),
        // Cut off from the API server.
        writes('cut-off', 'error', '0+1x20'),
        writes('cut-off', 'success', '0x20'),
        apiUp('cut-off', '0x20'),
        // Some writes fail, others succeed: retried, not stuck.
        writes('flaky', 'error', '0+1x20'),
        writes('flaky', 'success', '0+1x20'),
        // Quiet: nothing changes, nothing is written.
        writes('quiet', 'error', '0x20'),
        writes('quiet', 'success', '3x20'),
      ],
      [
        {
          eval_time: '16m',
          alertname: 'OriginguardSidecarReportsFailing',
          exp_alerts: [
            alert(
              'refused',
              'report_writes_refused',
              "The API server refuses the writes: check the sidecar's log for the message. The admission policy's message means the token is not this pod's; `forbidden` alone means the RoleBinding originguard-sidecar in the namespace lacks the pod's service account.",
            ),
            alert(
              'cut-off',
              'api_server_unreachable',
              "The sidecar cannot reach the API server: check the pod's egress to the API server (NetworkPolicy) and the API server itself; reports are written when it is back.",
            ),
          ],
        },
      ],
    );
  });

  it('OriginguardOperatorNoLeader: no replica leads, or no replica is there at all', async () => {
    const annotations = {
      summary: 'No originguard operator replica holds the leader Lease.',
      description:
        'For 5 minutes no operator replica has led: Origin status, Events and the sidecar RoleBindings are not updated (the sidecars keep proxying, and new pods are still injected while any replica serves the webhook).',
      cause: 'no_leader',
      hint: 'Check the operator pods (`kubectl get pods -n <operator namespace>`), their logs (`lease update failed`, `could not renew the lease in time`) and the Lease (`kubectl get lease -n <operator namespace>`): a holder that no longer exists with a stale renewTime, or RBAC on leases.',
      runbook_url: operations('OriginguardOperatorNoLeader'),
    };
    await promtoolTest(
      [
        { series: 'originguard_operator_leader{pod="op-a"}', values: '1 1 0x10' },
        { series: 'originguard_operator_leader{pod="op-b"}', values: '0x12' },
      ],
      [
        { eval_time: '5m', alertname: 'OriginguardOperatorNoLeader', exp_alerts: [] },
        {
          eval_time: '9m',
          alertname: 'OriginguardOperatorNoLeader',
          exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: annotations }],
        },
      ],
    );
    await promtoolTest(
      [{ series: 'up{job="something-else"}', values: '1x10' }],
      [
        {
          eval_time: '6m',
          alertname: 'OriginguardOperatorNoLeader',
          exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: annotations }],
        },
      ],
    );
    await promtoolTest(
      [
        { series: 'originguard_operator_leader{pod="op-a"}', values: '0x10' },
        { series: 'originguard_operator_leader{pod="op-b"}', values: '1x10' },
      ],
      [{ eval_time: '9m', alertname: 'OriginguardOperatorNoLeader', exp_alerts: [] }],
    );
  });

  it("OriginguardOperatorWebhookFailing: the operator's errors, or the API server failing open on it", async () => {
    const tail = 'Then restart the workloads whose pods were not injected.';
    await promtoolTest(
      [
        {
          series: 'originguard_operator_webhook_reviews_total{decision="error",pod="op-a"}',
          values: '0 0 1x10',
        },
        {
          series: 'originguard_operator_webhook_reviews_total{decision="injected",pod="op-a"}',
          values: '0+5x12',
        },
        {
          series: `apiserver_admission_webhook_fail_open_count{name="${POD_WEBHOOK}",type="admit"}`,
          values: '0 0 2x10',
        },
        // Another webhook failing open is not ours.
        {
          series: 'apiserver_admission_webhook_fail_open_count{name="other.example",type="admit"}',
          values: '0+1x12',
        },
      ],
      [
        { eval_time: '5m', alertname: 'OriginguardOperatorWebhookFailing', exp_alerts: [] },
        {
          eval_time: '8m',
          alertname: 'OriginguardOperatorWebhookFailing',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning' },
              exp_annotations: {
                summary:
                  'The originguard injection webhook is failing: pods are created without the sidecar.',
                description:
                  'The webhook answered reviews with errors in the last 15 minutes: the pods concerned were created without the sidecar (the webhook fails open) and show as not injected on their Origins.',
                cause: 'webhook_errors',
                hint: `The operator logs \`injection decision failed; pod allowed unpatched\` with the error: report it. ${tail}`,
                runbook_url: operations('OriginguardOperatorWebhookFailing'),
              },
            },
            {
              exp_labels: { severity: 'warning', name: POD_WEBHOOK },
              exp_annotations: {
                summary:
                  'The originguard injection webhook is failing: pods are created without the sidecar.',
                description: `The API server could not call the webhook ${POD_WEBHOOK} in the last 15 minutes: the pods concerned were created without the sidecar (the webhook fails open) and show as not injected on their Origins.`,
                cause: 'webhook_unreachable',
                hint: `Check that the operator pods are ready, that the webhook Service has endpoints, that the caBundle matches the operator's CA (x509 errors in the API server log) and that no NetworkPolicy blocks the API server on port 9443. ${tail}`,
                runbook_url: operations('OriginguardOperatorWebhookFailing'),
              },
            },
          ],
        },
      ],
    );
  });

  it('OriginguardWebhookCertificateExpiring: under 7 days left for an hour', async () => {
    await promtoolTest(
      // Expires 3 days after the test's time zero; the other replica's copy 300 days after.
      [
        {
          series: 'originguard_operator_webhook_certificate_expiry_timestamp_seconds{pod="op-a"}',
          values: '259200x80',
        },
        {
          series: 'originguard_operator_webhook_certificate_expiry_timestamp_seconds{pod="op-b"}',
          values: '25920000x80',
        },
      ],
      [
        { eval_time: '50m', alertname: 'OriginguardWebhookCertificateExpiring', exp_alerts: [] },
        {
          eval_time: '70m',
          alertname: 'OriginguardWebhookCertificateExpiring',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning' },
              exp_annotations: {
                // 259200 s - 70 min = 255000 s.
                summary: 'The originguard webhook certificate expires in 2d 22h 50m 0s.',
                description:
                  'The operator renews its webhook certificate when a third of its lifetime is left, so a certificate this close to expiry means renewal is failing; once it expires the API server cannot call the webhook and pods are created without the sidecar.',
                cause: 'certificate_rotation_failing',
                hint: "Check the operator logs for `webhook certificate: sync failed` and its rights on the webhook Secret; with cert-manager, the Certificate's status. Deleting the Secret makes the operator issue a new one.",
                runbook_url: operations('OriginguardWebhookCertificateExpiring'),
              },
            },
          ],
        },
      ],
    );
  });
});
