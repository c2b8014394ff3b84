// The Prometheus alerting rules the chart installs (a PrometheusRule, opt-in),
// as data. hack/generate-monitoring.ts writes them to
// charts/originguard/files/prometheus-rules.yaml, a plain rules file that
// `promtool check rules` and `promtool test rules` read as it is.
//
// Alert annotations cannot call code, so the hint for each RFC 9209 cause is
// generated into them from src/api/causes.ts: the notification itself says what
// to check, the same words as the Origin's status and the sidecar's error page,
// and runbook_url points at the cause's row in docs/causes.md. The cause is not
// a label of the Origin alerts: a change of cause must not resolve one alert and
// start another, so the annotations look it up (`query`) from the operator's
// originguard_operator_origin_cause series instead.
import { CAUSE_NAMES, CAUSES, DOCS_URL } from '../src/api/causes.ts';
import { POD_WEBHOOK } from '../src/operator/names.ts';

/** Where runbook_url points; the chart's prometheusRule.runbookBaseUrl replaces it. */
export const RUNBOOK_BASE = DOCS_URL;

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'critical' | 'warning' | 'info' };
  annotations: {
    summary: string;
    description: string;
    /** An RFC 9209 cause, or for the operator's own alerts a word for what is wrong. */
    cause: string;
    hint: string;
    runbook_url: string;
  };
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

/** The GitHub anchor of a docs/operations.md heading that is the alert's name. */
export const alertAnchor = (alert: string): string => alert.toLowerCase();
const operationsRunbook = (alert: string) => `${RUNBOOK_BASE}/operations.md#${alertAnchor(alert)}`;

/** Adds the Origin's namespace as `namespace`, so alerts route like any workload's. */
const withNamespace = (expr: string) =>
  `label_replace(\n  ${expr},\n  "namespace", "$1", "origin", "([^/]+)/.*"\n)`;

/** Sets $cause to the Origin's current cause (empty when none is published). */
const CAUSE_LOOKUP =
  '{{ $cause := "" }}{{ with query (printf "originguard_operator_origin_cause{origin=%q}" $labels.origin) }}{{ $cause = (. | first | label "cause") }}{{ end }}';

/** Per cause, the hint of src/api/causes.ts; for a cause this version does not know, where to look. */
const HINT_OF_CAUSE = `${CAUSE_NAMES.map(
  (cause, i) => `{{ ${i === 0 ? 'if' : 'else if'} eq $cause "${cause}" }}${CAUSES[cause].hint}`,
).join('')}{{ else }}See the Origin's status: kubectl describe origin.{{ end }}`;

const CAUSE_RUNBOOK = `{{ if $cause }}${RUNBOOK_BASE}/causes.md#{{ $cause }}{{ else }}${RUNBOOK_BASE}/causes.md{{ end }}`;
const DESCRIBE =
  '`kubectl describe origin -n {{ $labels.namespace }} {{ reReplaceAll "^[^/]+/" "" $labels.origin }}` shows the failing pods by cause and the last failure.';

/** Annotations of an alert about an Origin's current cause. */
function causeAnnotations(summary: string, description: string): AlertRule['annotations'] {
  return {
    summary: `${CAUSE_LOOKUP}${summary}`,
    description: `${CAUSE_LOOKUP}${description} ${DESCRIBE}`,
    cause: `${CAUSE_LOOKUP}{{ $cause }}`,
    hint: `${CAUSE_LOOKUP}${HINT_OF_CAUSE}`,
    runbook_url: `${CAUSE_LOOKUP}${CAUSE_RUNBOOK}`,
  };
}

const originAlerts: AlertRule[] = [
  {
    alert: 'OriginguardOriginUnreachable',
    expr: withNamespace('max by (origin) (originguard_operator_origin_reachable) == 0'),
    for: '5m',
    labels: { severity: 'critical' },
    annotations: causeAnnotations(
      'Origin {{ $labels.origin }} is unreachable from its pods ({{ $cause }}).',
      'The sidecars of Origin {{ $labels.origin }} have failed to reach the origin for 5 minutes, with cause {{ $cause }}: edge requests are answered 531/536.',
    ),
  },
  {
    alert: 'OriginguardOriginPartiallyUnreachable',
    expr: withNamespace(
      'max by (origin) (originguard_operator_origin_pods{state="failing"}) > 0\n    and on (origin) max by (origin) (originguard_operator_origin_reachable) == 1',
    ),
    for: '10m',
    labels: { severity: 'warning' },
    annotations: causeAnnotations(
      'Some pods of Origin {{ $labels.origin }} cannot reach the origin ({{ $cause }}).',
      '{{ $value }} pods of Origin {{ $labels.origin }} have failed to reach the origin for 10 minutes, with cause {{ $cause }}, while others reach it: the path from those pods (their node, zone or network policy), not the origin itself, is the likely culprit.',
    ),
  },
  {
    alert: 'OriginguardOriginPathFromPodsFailing',
    // Scope is a label: a path failure is routed to whoever runs the network, not the origin.
    expr: withNamespace(
      'max by (origin, scope) (originguard_operator_origin_scope{scope=~"PodPath|Nodes|Zones"}) == 1',
    ),
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      ...causeAnnotations(
        'The path from pods of Origin {{ $labels.origin }} fails, not the origin ({{ $labels.scope }}, {{ $cause }}).',
        'For 5 minutes the failures of Origin {{ $labels.origin }} ({{ $cause }}) follow the pods, not the origin: {{ if eq $labels.scope "PodPath" }}every pod fails while the operator reaches the origin from its own pod{{ else }}only the pods of some {{ if eq $labels.scope "Zones" }}zones{{ else }}nodes{{ end }} fail, every pod there{{ end }}. Check what applies to those pods and not to the others: NetworkPolicies, node egress rules (firewall, security group, routes), their DNS settings.',
      ),
      runbook_url: operationsRunbook('OriginguardOriginPathFromPodsFailing'),
    },
  },
  {
    alert: 'OriginguardOriginCauseChanged',
    // A cause published now that was not 10 minutes ago, on an Origin that had
    // another cause within those 10 minutes. Replicas aggregated out first, so a
    // leader change is not a cause change.
    expr: withNamespace(
      [
        'max by (origin, cause) (originguard_operator_origin_cause)',
        '    unless on (origin, cause) max by (origin, cause) (originguard_operator_origin_cause offset 10m)',
        '    and on (origin) count by (origin) (max by (origin, cause) (max_over_time(originguard_operator_origin_cause[10m]))) > 1',
      ].join('\n'),
    ),
    for: '0m',
    labels: { severity: 'info' },
    annotations: {
      summary: 'The cause of Origin {{ $labels.origin }} failures changed to {{ $labels.cause }}.',
      description: `Origin {{ $labels.origin }} still fails, now with cause {{ $labels.cause }}{{ with query (printf "max by (cause) (max_over_time(originguard_operator_origin_cause{origin=%q}[10m])) unless on (cause) originguard_operator_origin_cause{origin=%q}" $labels.origin $labels.origin) }} (was {{ . | first | label "cause" }}){{ end }}: what to fix has changed. ${DESCRIBE}`,
      cause: '{{ $labels.cause }}',
      hint: `{{ $cause := $labels.cause }}${HINT_OF_CAUSE}`,
      runbook_url: `${RUNBOOK_BASE}/causes.md#{{ $labels.cause }}`,
    },
  },
  {
    alert: 'OriginguardPodsNotInjected',
    expr: withNamespace('max by (origin) (originguard_operator_origin_pods{state="not_injected"}) > 0'),
    for: '15m',
    labels: { severity: 'warning' },
    annotations: {
      summary: '{{ $value }} pods selected by Origin {{ $labels.origin }} run without the sidecar.',
      description: `{{ $value }} pods that Origin {{ $labels.origin }} selects have run without the originguard sidecar for 15 minutes: their edge traffic is not proxied, classified or reported. ${DESCRIBE.replace('shows the failing pods by cause and the last failure', 'names some of them')}`,
      cause: 'pods_not_injected',
      hint: 'Pods are injected only when they are created: restart the workload (`kubectl rollout restart`). If new pods still come up without the sidecar, the injection webhook is failing (it fails open): see OriginguardOperatorWebhookFailing.',
      runbook_url: operationsRunbook('OriginguardPodsNotInjected'),
    },
  },
];

const sidecarAlerts: AlertRule[] = [
  {
    alert: 'OriginguardSidecarReportsFailing',
    // Errors and not one success in 10 minutes. A healthy, quiet sidecar writes
    // nothing at all, so no traffic never looks like a failure.
    expr: [
      'sum by (namespace, pod) (increase(originguard_report_writes_total{result="error"}[10m])) > 0',
      '  unless sum by (namespace, pod) (increase(originguard_report_writes_total{result="success"}[10m])) > 0',
    ].join('\n'),
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary:
        'The originguard sidecar of pod {{ $labels.namespace }}/{{ $labels.pod }} cannot write its reports.',
      description:
        'For 15 minutes every OriginReport write of the sidecar in {{ $labels.namespace }}/{{ $labels.pod }} has failed: the Origin status and `kubectl get origins` no longer show what this pod sees. It still proxies and answers 531/536.',
      cause:
        '{{ with query (printf "max(originguard_kube_api_up{namespace=%q,pod=%q}) == 0" $labels.namespace $labels.pod) }}api_server_unreachable{{ else }}report_writes_refused{{ end }}',
      hint: "{{ with query (printf \"max(originguard_kube_api_up{namespace=%q,pod=%q}) == 0\" $labels.namespace $labels.pod) }}The sidecar cannot reach the API server: check the pod's egress to the API server (NetworkPolicy) and the API server itself; reports are written when it is back.{{ else }}The API server refuses the writes: check the sidecar's log for the message. The admission policy's message means the token is not this pod's; `forbidden` alone means the RoleBinding originguard-sidecar in the namespace lacks the pod's service account.{{ end }}",
      runbook_url: operationsRunbook('OriginguardSidecarReportsFailing'),
    },
  },
];

const operatorAlerts: AlertRule[] = [
  {
    alert: 'OriginguardOperatorNoLeader',
    // Also true when no replica is scraped at all: no operator, no leader.
    expr: '(sum(originguard_operator_leader) or vector(0)) < 1',
    for: '5m',
    labels: { severity: 'critical' },
    annotations: {
      summary: 'No originguard operator replica holds the leader Lease.',
      description:
        'For 5 minutes no operator replica has led: Origin status, Events and the sidecar RoleBindings are not updated (the sidecars keep proxying, and new pods are still injected while any replica serves the webhook).',
      cause: 'no_leader',
      hint: 'Check the operator pods (`kubectl get pods -n <operator namespace>`), their logs (`lease update failed`, `could not renew the lease in time`) and the Lease (`kubectl get lease -n <operator namespace>`): a holder that no longer exists with a stale renewTime, or RBAC on leases.',
      runbook_url: operationsRunbook('OriginguardOperatorNoLeader'),
    },
  },
  {
    alert: 'OriginguardOperatorWebhookFailing',
    // The operator's own errors, or the API server failing to call it (fail open)
    // or rejecting pods for it (failurePolicy Fail): kube-apiserver's metrics.
    expr: [
      'sum(increase(originguard_operator_webhook_reviews_total{decision="error"}[15m])) > 0',
      `or sum by (name) (increase(apiserver_admission_webhook_fail_open_count{name="${POD_WEBHOOK}"}[15m])) > 0`,
      `or sum by (name) (increase(apiserver_admission_webhook_rejection_count{name="${POD_WEBHOOK}",error_type="calling_webhook_error"}[15m])) > 0`,
    ].join('\n'),
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'The originguard injection webhook is failing: pods are created without the sidecar.',
      description:
        '{{ if $labels.name }}The API server could not call the webhook {{ $labels.name }}{{ else }}The webhook answered reviews with errors{{ end }} in the last 15 minutes: the pods concerned were created without the sidecar (the webhook fails open) and show as not injected on their Origins.',
      cause: '{{ if $labels.name }}webhook_unreachable{{ else }}webhook_errors{{ end }}',
      hint: "{{ if $labels.name }}Check that the operator pods are ready, that the webhook Service has endpoints, that the caBundle matches the operator's CA (x509 errors in the API server log) and that no NetworkPolicy blocks the API server on port 9443.{{ else }}The operator logs `injection decision failed; pod allowed unpatched` with the error: report it.{{ end }} Then restart the workloads whose pods were not injected.",
      runbook_url: operationsRunbook('OriginguardOperatorWebhookFailing'),
    },
  },
  {
    alert: 'OriginguardWebhookCertificateExpiring',
    expr: 'min(originguard_operator_webhook_certificate_expiry_timestamp_seconds) - time() < 7 * 86400',
    for: '1h',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'The originguard webhook certificate expires in {{ $value | humanizeDuration }}.',
      description:
        'The operator renews its webhook certificate when a third of its lifetime is left, so a certificate this close to expiry means renewal is failing; once it expires the API server cannot call the webhook and pods are created without the sidecar.',
      cause: 'certificate_rotation_failing',
      hint: "Check the operator logs for `webhook certificate: sync failed` and its rights on the webhook Secret; with cert-manager, the Certificate's status. Deleting the Secret makes the operator issue a new one.",
      runbook_url: operationsRunbook('OriginguardWebhookCertificateExpiring'),
    },
  },
];

export function ruleGroups(): RuleGroup[] {
  return [
    { name: 'originguard.origins', rules: originAlerts },
    { name: 'originguard.sidecars', rules: sidecarAlerts },
    { name: 'originguard.operator', rules: operatorAlerts },
  ];
}
