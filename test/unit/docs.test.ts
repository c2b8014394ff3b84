import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAUSE_NAMES } from '../../src/api/causes.ts';

describe('documentation', () => {
  it('docs/causes.md has a row for every cause the sidecar can report', () => {
    const doc = readFileSync(new URL('../../docs/causes.md', import.meta.url), 'utf8');
    const rows = new Set([...doc.matchAll(/^\| `([a-z_]+)`/gm)].map((m) => m[1]));
    expect([...rows].sort()).toEqual([...CAUSE_NAMES].sort());
  });
});
