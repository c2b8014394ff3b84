// Writes crds/*.yaml from the TypeBox schemas in src/api/ (npm run generate:crds).
import { writeFileSync } from 'node:fs';
import { crdFiles, renderCRD } from '../src/api/crd.ts';

const dir = new URL('../crds/', import.meta.url);
for (const { file, crd } of crdFiles()) {
  writeFileSync(new URL(file, dir), renderCRD(crd));
  console.warn(`wrote crds/${file}`);
}
