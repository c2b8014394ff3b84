// docs/metrics.md lists every metric the code registers: the sidecar's and the
// operator's registries as constructed, and any metric named in src/ (cluster
// mode registers its own on the sidecar's registry).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OperatorMetrics } from '../../src/operator/metrics.ts';
import { SidecarMetrics } from '../../src/sidecar/metrics.ts';
import {
  metricsDoc as doc,
  documented,
  namedInSources,
  registered,
  sources,
} from '../support/metric-names.ts';

describe('docs/metrics.md', () => {
  it('has a row for every sidecar metric', async () => {
    const names = await registered(new SidecarMetrics().registry, 'originguard_');
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });

  it('has a row for every operator metric', async () => {
    const names = await registered(new OperatorMetrics().registry, 'originguard_operator_');
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });

  it('has a row for every metric named anywhere in src/', () => {
    const names = namedInSources();
    expect(names).toContain('originguard_report_writes_total');
    expect(names).toContain('originguard_kube_api_up');
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });

  it('documents no metric the code does not register', () => {
    const code = sources()
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const rows = [...doc.matchAll(/^\| `(originguard_[a-z_]+)` \|/gm)].map((m) => m[1] as string);
    expect(rows.filter((n) => !code.includes(`'${n}'`))).toEqual([]);
  });

  it('mentions the default process metrics of both processes', () => {
    expect(doc).toContain('`originguard_process_*`');
    expect(doc).toContain('`originguard_operator_process_*`');
  });
});
