// Writes deploy/*.yaml from src/operator/manifests.ts (npm run generate:manifests):
// the RBAC and the admission policy, for `kubectl apply -f deploy/` and the tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import { manifestFiles, renderManifests } from '../src/operator/manifests.ts';

const dir = new URL('../deploy/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const { file, objects } of manifestFiles()) {
  writeFileSync(new URL(file, dir), renderManifests(objects));
  console.warn(`wrote deploy/${file}`);
}
