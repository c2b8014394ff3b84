// OriginguardOperatorWebhookFailing also reads kube-apiserver's own metrics: that
// the real API server counts a webhook it could not call, under the metric and
// label names the rule uses, when the injection webhook fails open
// (failurePolicy Ignore, the default) and when it fails closed (Fail).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMetrics, sumOf } from '../../hack/prom-text.ts';
import { POD_WEBHOOK } from '../../src/operator/names.ts';
import { closedPort } from '../support/origins.ts';
import {
  applyLoopbackWebhook,
  createNamespace,
  deleteNamespace,
  kubectl,
  kubectlOk,
  podYaml,
} from './fixtures.ts';

const id = randomBytes(3).toString('hex');
const LABEL = 'originguard.test/monitoring';

/** The API server's counter for our webhook, summed over the other labels that match. */
async function apiServerCounter(metric: string, labels: Record<string, string>): Promise<number> {
  return sumOf(parseMetrics(await kubectlOk(['get', '--raw', '/metrics'])), metric, labels);
}

describe('kube-apiserver metrics the webhook alert reads', () => {
  const configs = { Ignore: `og-monitoring-ignore-${id}`, Fail: `og-monitoring-fail-${id}` };
  const namespaces = { Ignore: '', Fail: '' };

  beforeAll(async () => {
    const port = await closedPort();
    for (const policy of ['Ignore', 'Fail'] as const) {
      const ns = await createNamespace('og-monitoring');
      await kubectlOk(['label', 'namespace', ns, `${LABEL}=${id}-${policy}`]);
      namespaces[policy] = ns;
      // Our webhook, by its name, pointing at a port where nothing listens.
      await applyLoopbackWebhook({
        name: configs[policy],
        port,
        label: { [LABEL]: `${id}-${policy}` },
        extra: { failurePolicy: policy, timeoutSeconds: 2 },
      });
    }
  });

  afterAll(async () => {
    for (const name of Object.values(configs))
      await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
    for (const ns of Object.values(namespaces)) if (ns !== '') await deleteNamespace(ns);
  });

  it(`counts a pod let through without the webhook in apiserver_admission_webhook_fail_open_count{name="${POD_WEBHOOK}"}`, async () => {
    const labels = { name: POD_WEBHOOK };
    const before = await apiServerCounter('apiserver_admission_webhook_fail_open_count', labels);
    await kubectlOk(['create', '-f', '-'], { input: podYaml(namespaces.Ignore, 'let-through', {}) });
    expect(await apiServerCounter('apiserver_admission_webhook_fail_open_count', labels)).toBeGreaterThan(
      before,
    );
  });

  it('counts a pod refused for it in apiserver_admission_webhook_rejection_count{error_type="calling_webhook_error"}', async () => {
    const labels = { name: POD_WEBHOOK, error_type: 'calling_webhook_error' };
    const before = await apiServerCounter('apiserver_admission_webhook_rejection_count', labels);
    const refused = await kubectl(['create', '-f', '-'], { input: podYaml(namespaces.Fail, 'refused', {}) });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/failed calling webhook/);
    expect(await apiServerCounter('apiserver_admission_webhook_rejection_count', labels)).toBeGreaterThan(
      before,
    );
  });
});
