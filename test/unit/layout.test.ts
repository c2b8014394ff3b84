// The layout docs/architecture.md describes, checked on every import of src/,
// hack/ and bench/: which layer may import which, no cycles, no product or tool
// code that leans on the tests, one reader of package.json, and error codes
// written out only where they are defined.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = normalize(join(import.meta.dirname, '../..'));

/** What each part of src/ may import besides itself. Top-level files are parts of their own. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  'errors.ts': [],
  'retry.ts': [],
  'version.ts': [],
  'process.ts': [],
  'flags.ts': ['api', 'errors.ts'],
  kube: ['errors.ts', 'retry.ts'],
  api: ['kube', 'errors.ts'],
  upstream: ['api', 'errors.ts'],
  diagnose: ['upstream', 'api', 'kube', 'errors.ts', 'flags.ts', 'process.ts', 'retry.ts', 'version.ts'],
  sidecar: [
    'diagnose',
    'upstream',
    'api',
    'kube',
    'errors.ts',
    'flags.ts',
    'process.ts',
    'retry.ts',
    'version.ts',
  ],
  operator: [
    'diagnose',
    'upstream',
    'api',
    'kube',
    'errors.ts',
    'flags.ts',
    'process.ts',
    'retry.ts',
    'version.ts',
  ],
  types: [],
  // The entry points only dispatch to the commands (and print the version).
  'cli.ts': ['sidecar', 'operator', 'diagnose', 'version.ts'],
  'main.ts': ['cli.ts'],
};

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

// Static imports and re-exports (type-only ones too: a cycle of types is still a cycle
// to the reader) and dynamic import() with a literal specifier.
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)|(?:^|\n)\s*import\s+'([^']+)'/g;

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? '';
    if (spec.startsWith('.')) out.push(normalize(join(dirname(file), spec)));
  }
  return out;
}

/** 'src/sidecar/forward.ts' → 'sidecar'; 'src/cli.ts' → 'cli.ts'. */
const partOf = (file: string): string => file.split('/')[1] ?? '';

const SRC = filesUnder('src');
const GRAPH = new Map(SRC.map((f) => [f, importsOf(f).filter((i) => i.startsWith('src/'))]));

describe('layout', () => {
  it('keeps each part of src/ to the parts it may import', () => {
    const wrong: string[] = [];
    for (const [file, imports] of GRAPH) {
      const from = partOf(file);
      const allowed = ALLOWED[from];
      if (allowed === undefined) {
        wrong.push(`${file}: src/${from} is not in the layout (add it to ALLOWED and docs/architecture.md)`);
        continue;
      }
      for (const target of imports) {
        const to = partOf(target);
        if (to !== from && !allowed.includes(to)) wrong.push(`${file} imports ${target} (${from} → ${to})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycle in src/', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of GRAPH.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of GRAPH.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('never imports the tests from src/, hack/ or bench/', () => {
    const wrong = ['src', 'hack', 'bench']
      .flatMap(filesUnder)
      .flatMap((f) => importsOf(f).map((i) => [f, i] as const))
      .filter(([, i]) => i.startsWith('test/'))
      .map(([f, i]) => `${f} imports ${i}`);
    expect(wrong).toEqual([]);
  });

  it('reads package.json in one place, src/version.ts', () => {
    const readers = SRC.filter((f) => importsOf(f).includes('package.json'));
    expect(readers).toEqual(['src/version.ts']);
  });

  it('writes an error code out only in the errors module that defines it', () => {
    const wrong: string[] = [];
    for (const file of [...SRC, ...filesUnder('test')]) {
      if (file.endsWith('/errors.ts') || file === 'src/errors.ts') continue;
      const codes = readFileSync(join(ROOT, file), 'utf8').match(/['"`]OG_[A-Z_]+['"`]/g) ?? [];
      for (const code of codes) wrong.push(`${file}: ${code} (import the constant from its errors.ts)`);
    }
    expect(wrong).toEqual([]);
  });
});
