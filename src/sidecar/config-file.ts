// The standalone configuration: a YAML file of Origin manifests, exactly as
// they would be applied to a cluster. Validated with the CRD's own schema and
// rules (api/origin-documents.ts) plus the listen ports' routing, and watched:
// a valid change is applied, an invalid one refused with the same messages
// while the last good configuration keeps serving.
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { originKey } from '../api/contract.ts';
import type { OriginManifest } from '../api/origin.ts';
import { parseOrigins } from '../api/origin-documents.ts';
import { buildRoutes } from './router.ts';

export type LoadResult =
  | { readonly ok: true; readonly origins: OriginManifest[]; readonly digest: string }
  | { readonly ok: false; readonly errors: string[]; readonly digest: string };

/** Parses and validates a config text. Every problem is reported, each naming its document and field. */
export function parseConfig(text: string, source: string): LoadResult {
  const digest = createHash('sha256').update(text).digest('hex');
  const { origins, errors } = parseOrigins(text, source);
  if (errors.length === 0 && origins.length === 0) errors.push(`${source}: no Origin declared`);
  if (errors.length === 0) {
    const routes = buildRoutes(
      origins.map((o) => ({
        key: originKey(o),
        listen: o.spec.listen,
        ...(o.spec.hosts ? { hosts: o.spec.hosts } : {}),
      })),
    );
    for (const e of routes.errors) errors.push(`${source}: ${e}`);
  }
  return errors.length === 0 ? { ok: true, origins, digest } : { ok: false, errors, digest };
}

export async function loadConfigFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${path}: cannot read: ${(err as Error).message}`], digest: '' };
  }
  return parseConfig(text, path);
}

/**
 * Watches the file (through its directory, so editors that replace the file and
 * Kubernetes ConfigMap symlink swaps are seen) and calls back with each changed
 * content's result. Unchanged content is ignored.
 */
export function watchConfigFile(
  path: string,
  lastDigest: string,
  onChange: (result: LoadResult) => void,
  debounceMs = 100,
): { close(): void } {
  let digest = lastDigest;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const check = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const result = await loadConfigFile(path);
      if (result.digest !== digest && result.digest !== '') {
        digest = result.digest;
        onChange(result);
      }
    } finally {
      running = false;
      if (again) {
        again = false;
        void check();
      }
    }
  };
  const name = basename(path);
  const watcher: FSWatcher = watch(dirname(path), (_event, file) => {
    if (file !== null && file !== name && !file.startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), debounceMs);
  });
  watcher.on('error', () => undefined);
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
