#!/usr/bin/env node
// Runs the compiled CLI; in a source checkout without a build, Node's type
// stripping runs the TypeScript directly.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli.js', import.meta.url);
await import(existsSync(compiled) ? compiled.href : new URL('../src/cli.ts', import.meta.url).href);
