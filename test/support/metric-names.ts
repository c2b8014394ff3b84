// The metric names the code registers and the ones docs/metrics.md documents,
// for the tests that hold docs, dashboards and alerts to the code.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';

const src = new URL('../../src/', import.meta.url).pathname;

export const metricsDoc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');

/** Every .ts file under src/. */
export function sources(dir = src): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Registered names, without prom-client's default process and runtime metrics (documented as families). */
export async function registered(registry: Registry, prefix: string): Promise<string[]> {
  const all = (await registry.getMetricsAsJSON()).map((m) => m.name);
  return all.filter((n) => !n.startsWith(`${prefix}process_`) && !n.startsWith(`${prefix}nodejs_`));
}

/** Metric names given to a prom-client constructor anywhere in src/ (`name: 'originguard_…'`). */
export function namedInSources(): string[] {
  return sources().flatMap((f) =>
    [...readFileSync(f, 'utf8').matchAll(/name: '(originguard_[a-z_]+)'/g)].map((m) => m[1] as string),
  );
}

/** Whether docs/metrics.md has a table row for the metric. */
export const documented = (name: string): boolean => metricsDoc.includes(`| \`${name}\` |`);
