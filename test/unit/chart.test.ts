// Pure checks of charts/originguard that need no helm binary: the generated files the
// chart renders from (files/) stay byte-equal to crds/ and deploy/, and the chart's
// versions and sidecar defaults match the code. Rendering is tested in
// test/cluster/chart.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RUNBOOK_BASE, ruleGroups } from '../../hack/alerts.ts';
import pkg from '../../package.json' with { type: 'json' };
import { DEFAULT_SIDECAR_TEMPLATE } from '../../src/operator/injection.ts';
import { DEFAULT_DENIED_NETWORKS } from '../../src/operator/probe-policy.ts';

const repo = new URL('../../', import.meta.url);
const chart = new URL('charts/originguard/', repo);
const read = (url: URL) => readFileSync(url, 'utf8');

describe('charts/originguard', () => {
  it('keeps files/crds/ equal to the generated crds/ (copy crds/*.yaml there after npm run generate:crds)', () => {
    const generated = readdirSync(new URL('crds/', repo)).sort();
    const copied = readdirSync(new URL('files/crds/', chart)).sort();
    expect(copied).toEqual(generated);
    for (const file of generated) {
      expect(read(new URL(`files/crds/${file}`, chart)), file).toBe(read(new URL(`crds/${file}`, repo)));
    }
  });

  it('keeps files/admission-policy.yaml equal to the generated deploy/admission-policy.yaml', () => {
    expect(read(new URL('files/admission-policy.yaml', chart))).toBe(
      read(new URL('deploy/admission-policy.yaml', repo)),
    );
  });

  it('has the package version as version and appVersion', () => {
    const meta = parseYaml(read(new URL('Chart.yaml', chart))) as Record<string, unknown>;
    expect(meta).toMatchObject({
      apiVersion: 'v2',
      name: 'originguard',
      version: pkg.version,
      appVersion: pkg.version,
    });
  });

  it('defaults the sidecar settings to the operator defaults', () => {
    const values = parseYaml(read(new URL('values.yaml', chart))) as { sidecar: Record<string, unknown> };
    const { image: _image, version: _version, ...defaults } = DEFAULT_SIDECAR_TEMPLATE;
    const { image, ...sidecar } = values.sidecar;
    expect(image).toBe('');
    expect(sidecar).toEqual(defaults);
  });

  it("defaults the operator's probe as the operator does: on, every namespace, loopback and link-local denied", () => {
    const values = parseYaml(read(new URL('values.yaml', chart))) as {
      operator: { originProbe: Record<string, unknown> };
    };
    expect(values.operator.originProbe).toEqual({
      enabled: true,
      namespaceSelector: '',
      minInterval: '30s',
      refresh: '5m',
      deniedNetworks: [...DEFAULT_DENIED_NETWORKS],
    });
  });

  it('has a values schema that parses and closes the top level', () => {
    const schema = JSON.parse(read(new URL('values.schema.json', chart))) as Record<string, unknown>;
    expect(schema.additionalProperties).toBe(false);
  });

  it('knows the generated alerts: the runbook base the template replaces, and the names disabled may list', () => {
    const values = parseYaml(read(new URL('values.yaml', chart))) as {
      metrics: { prometheusRule: { runbookBaseUrl: string } };
    };
    expect(values.metrics.prometheusRule.runbookBaseUrl).toBe(RUNBOOK_BASE);
    expect(read(new URL('templates/monitoring.yaml', chart))).toContain(
      `$generatedBase := "${RUNBOOK_BASE}"`,
    );
    const schema = JSON.parse(read(new URL('values.schema.json', chart))) as {
      properties: {
        metrics: {
          properties: { prometheusRule: { properties: { disabled: { items: { enum: string[] } } } } };
        };
      };
    };
    expect(schema.properties.metrics.properties.prometheusRule.properties.disabled.items.enum).toEqual(
      ruleGroups().flatMap((g) => g.rules.map((r) => r.alert)),
    );
  });
});
