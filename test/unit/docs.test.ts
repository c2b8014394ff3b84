import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES } from '../../src/api/causes.ts';
import { statusFor } from '../../src/upstream/classify.ts';

describe('documentation', () => {
  it('docs/causes.md has a row for every cause the sidecar can report', () => {
    const doc = readFileSync(new URL('../../docs/causes.md', import.meta.url), 'utf8');
    const rows = new Set([...doc.matchAll(/^\| `([a-z_]+)`/gm)].map((m) => m[1]));
    expect([...rows].sort()).toEqual([...CAUSE_NAMES].sort());
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
