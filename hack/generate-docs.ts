// Rewrites the generated docs from the schemas in src/ (npm run generate:docs):
// the reference part of docs/origin.md (the hand-written part above the marker
// is kept) and docs/diagnose.schema.json, the JSON Schema of `diagnose -o json`.
import { readFileSync, writeFileSync } from 'node:fs';
import { diagnosisJsonSchema } from '../src/diagnose/schema.ts';
import { withReference } from './origin-reference.ts';

const file = new URL('../docs/origin.md', import.meta.url);
writeFileSync(file, withReference(readFileSync(file, 'utf8')));
console.warn('wrote docs/origin.md');
writeFileSync(
  new URL('../docs/diagnose.schema.json', import.meta.url),
  `${JSON.stringify(diagnosisJsonSchema(), null, 2)}\n`,
);
console.warn('wrote docs/diagnose.schema.json');
