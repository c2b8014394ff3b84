#!/usr/bin/env node
// The kubectl plugin: kubectl runs `kubectl originguard ...` as this file (an
// executable named kubectl-originguard on PATH). The same bundle as
// bin/originguard.js; the CLI sees its name and offers diagnose and status.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/originguard.mjs', import.meta.url);
await import(existsSync(bundle) ? bundle.href : new URL('../src/main.ts', import.meta.url).href);
