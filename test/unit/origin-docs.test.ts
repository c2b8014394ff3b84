import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { END, renderOriginReference, START, withReference } from '../../hack/origin-reference.ts';
import { originCRD } from '../../src/api/crd.ts';

const doc = readFileSync(new URL('../../docs/origin.md', import.meta.url), 'utf8');

/** Every field path of a schema node: spec.upstream.tls.enabled, spec.upstream.backups[].host, ... */
function fieldPaths(node: Record<string, unknown>, path: string, out: string[] = []): string[] {
  const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [key, sub] of Object.entries(properties ?? {})) {
    out.push(`${path}.${key}`);
    fieldPaths(sub, `${path}.${key}`, out);
    const items = sub.items as Record<string, unknown> | undefined;
    if (items !== undefined) fieldPaths(items, `${path}.${key}[]`, out);
  }
  return out;
}

describe('docs/origin.md', () => {
  it('has the reference generated from src/api (else run npm run generate:docs)', () => {
    expect(doc, 'docs/origin.md is stale: run npm run generate:docs').toBe(withReference(doc));
    expect(doc).toContain(renderOriginReference());
  });

  it('keeps a hand-written part with examples above the generated reference', () => {
    const handWritten = doc.slice(0, doc.indexOf(START));
    expect(handWritten).toContain('```yaml');
    expect(handWritten).toContain('kubectl get origins');
    expect(doc.trimEnd().endsWith(END)).toBe(true);
  });

  it('documents every field of spec and status with its section or row', () => {
    const root = originCRD().spec.versions[0]?.schema.openAPIV3Schema as Record<string, unknown>;
    const parts = root.properties as Record<string, Record<string, unknown>>;
    for (const part of ['spec', 'status'] as const) {
      for (const path of fieldPaths(parts[part] ?? {}, part)) {
        const parent = path.slice(0, path.lastIndexOf('.'));
        const field = path.slice(path.lastIndexOf('.') + 1);
        const section = doc.indexOf(`### \`${parent}\`\n`);
        expect(section, `no section for ${parent}`).toBeGreaterThan(-1);
        const next = doc.indexOf('\n### ', section + 1);
        const body = doc.slice(section, next === -1 ? undefined : next);
        expect(body, `${path} has no row`).toMatch(new RegExp(`^\\| \\[?\`${field}\``, 'm'));
      }
    }
  });

  it('shows the defaults and CEL messages of the schema', () => {
    expect(doc).toMatch(/\| `connect` \| string \| {2}\| `5s` \|/);
    expect(doc).toContain('set caBundle or caFile, not both');
    expect(doc).toContain('baseEjectionTime must not exceed maxEjectionTime');
    expect(doc).toContain('one of `Uniform`, `Edgio`');
  });
});
