#!/usr/bin/env node
// Runs the bundled CLI (npm run build); in a source checkout without a build,
// Node's type stripping runs the TypeScript sources directly.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/originguard.mjs', import.meta.url);
await import(existsSync(bundle) ? bundle.href : new URL('../src/main.ts', import.meta.url).href);
