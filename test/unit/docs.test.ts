import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES, CAUSES_DOC, causeDocUrl } from '../../src/api/causes.ts';
import { EXIT } from '../../src/diagnose/diagnosis.ts';
import { Diagnosis, diagnosisJsonSchema, Verdict } from '../../src/diagnose/schema.ts';
import { statusFor } from '../../src/upstream/classify.ts';

describe('documentation', () => {
  it('docs/causes.md has a row for every cause the sidecar can report, each the target of its diagnose link', () => {
    const doc = readFileSync(new URL('../../docs/causes.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` <a id="([a-z_]+)"><\/a>/gm)];
    expect(rows.map((m) => m[2])).toEqual(rows.map((m) => m[1]));
    expect(rows.map((m) => m[1]).sort()).toEqual([...CAUSE_NAMES].sort());
    for (const cause of CAUSE_NAMES) expect(causeDocUrl(cause)).toBe(`${CAUSES_DOC}#${cause}`);
  });

  it.each(CAUSE_NAMES)(
    'docs/causes.md says what %s means, what goes out (Edgio code included) and how to fix it',
    (cause) => {
      const doc = readFileSync(new URL('../../docs/causes.md', import.meta.url), 'utf8');
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${cause}\``)) ?? '';
      // | cause | phase | answer | raw error | meaning | fix |
      const cells = row
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim());
      expect(cells).toHaveLength(6);
      const [, phase, answer, , meaning, fix] = cells as string[];
      expect(phase).not.toBe('');
      expect(meaning?.length, `${cause}: meaning`).toBeGreaterThan(15);
      expect(fix?.length, `${cause}: how to fix`).toBeGreaterThan(15);
      if (cause !== 'http_response_incomplete' && cause !== 'proxy_internal_error')
        expect(answer, `${cause}: the answer names 531 or 536`).toMatch(/53[16]/);
      // What the sidecar really sends under the Edgio profile (connect phase), when it differs.
      const edgio = statusFor({ cause, phase: 'connect' }, 'Edgio');
      if (edgio !== statusFor({ cause, phase: 'connect' }, 'Uniform'))
        expect(answer, `${cause}: Edgio profile code`).toContain(`/ ${edgio}`);
    },
  );
});

describe('docs/diagnose.md', () => {
  const doc = readFileSync(new URL('../../docs/diagnose.md', import.meta.url), 'utf8');

  it('publishes the JSON Schema generated from src/diagnose/schema.ts (else run npm run generate:docs)', () => {
    const file = readFileSync(new URL('../../docs/diagnose.schema.json', import.meta.url), 'utf8');
    expect(file, 'docs/diagnose.schema.json is stale: run npm run generate:docs').toBe(
      `${JSON.stringify(diagnosisJsonSchema(), null, 2)}\n`,
    );
  });

  it('has a row for every exit code of the command', () => {
    for (const code of Object.values(EXIT)) expect(doc).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('documents every top-level field of the JSON document and of its verdict', () => {
    const fields = (schema: { properties: Record<string, unknown> }) => Object.keys(schema.properties);
    for (const f of fields(Diagnosis).filter((f) => !['apiVersion', 'kind'].includes(f)))
      expect(doc, f).toContain(`\`${f}`);
    for (const f of fields(Verdict)) expect(doc, `verdict.${f}`).toContain(`verdict.${f}`);
  });
});
