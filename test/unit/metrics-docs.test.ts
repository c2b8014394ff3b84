// docs/metrics.md lists every metric the code registers: the sidecar's and the
// operator's registries as constructed, and any metric named in src/ (cluster
// mode registers its own on the sidecar's registry).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OperatorMetrics } from '../../src/operator/metrics.ts';
import { SidecarMetrics } from '../../src/sidecar/metrics.ts';

const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
const src = new URL('../../src/', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Registered names, without prom-client's default process and runtime metrics (documented as families). */
async function registered(registry: SidecarMetrics['registry'], prefix: string): Promise<string[]> {
  const all = (await registry.getMetricsAsJSON()).map((m) => m.name);
  return all.filter((n) => !n.startsWith(`${prefix}process_`) && !n.startsWith(`${prefix}nodejs_`));
}

const documented = (name: string) => doc.includes(`| \`${name}\` |`);

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
    const names = sources(src).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/name: '(originguard_[a-z_]+)'/g)].map((m) => m[1] as string),
    );
    expect(names).toContain('originguard_report_writes_total');
    expect(names).toContain('originguard_kube_api_up');
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });

  it('documents no metric the code does not register', () => {
    const code = sources(src)
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
