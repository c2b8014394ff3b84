// Rewrites the generated part of docs/origin.md from the schemas in src/api/
// (npm run generate:docs). The hand-written part above the marker is kept.
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from './origin-reference.ts';

const file = new URL('../docs/origin.md', import.meta.url);
writeFileSync(file, withReference(readFileSync(file, 'utf8')));
console.warn('wrote docs/origin.md');
