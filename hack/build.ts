// Builds the production artifact: a minified ESM bundle of the CLI. One file
// starts faster and holds less memory than hundreds of node_modules files, and
// the container image needs no node_modules at all.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });

const result = await build({
  entryPoints: { originguard: 'src/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  // Each subcommand's code is its own chunk: a sidecar never loads the operator.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  // Bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __ogRequire } from 'node:module'; const require = __ogRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(`dist/originguard.mjs built (${(bytes / 1024).toFixed(0)} KiB with maps)\n`);
