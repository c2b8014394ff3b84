// Writes the chart's alerting rules and Grafana dashboard from hack/alerts.ts and
// hack/dashboard.ts (npm run generate:monitoring). test/unit/monitoring.test.ts
// fails when the files on disk are stale.
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { ruleGroups } from './alerts.ts';
import { dashboard } from './dashboard.ts';

export const RULES_FILE = 'charts/originguard/files/prometheus-rules.yaml';
export const DASHBOARD_FILE = 'charts/originguard/files/grafana-dashboard.json';

export function rulesYaml(): string {
  return `# Generated from hack/alerts.ts by npm run generate:monitoring; do not edit.
# A Prometheus rules file: the chart wraps it in a PrometheusRule
# (metrics.prometheusRule.enabled), and \`promtool check rules\` reads it as it is.
${stringify({ groups: ruleGroups() }, { lineWidth: 0 })}`;
}

export function dashboardJson(): string {
  return `${JSON.stringify(dashboard(), null, 2)}\n`;
}

if (import.meta.main) {
  const repo = new URL('../', import.meta.url);
  writeFileSync(new URL(RULES_FILE, repo), rulesYaml());
  writeFileSync(new URL(DASHBOARD_FILE, repo), dashboardJson());
  console.warn(`wrote ${RULES_FILE} and ${DASHBOARD_FILE}`);
}
