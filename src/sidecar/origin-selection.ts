// Which Origins of its namespace a sidecar in the cluster serves: those whose
// selector selects its pod's labels, validated as the config file is. Pure; the
// cluster loop calls it on every Origin or label change.
//
// Conflicts are settled the way Gateway API settles route conflicts: the oldest
// Origin (creationTimestamp, then name) keeps the port or host and the newer one
// is refused. Every pod then reaches the same answer whenever it started, and a
// new conflicting Origin cannot take traffic away from one that serves.

import { originKey } from '../api/contract.ts';
import type { OriginManifest } from '../api/origin.ts';
import { selects } from '../api/selector.ts';
import { type Validated, validateOrigin } from '../api/validate.ts';
import type { Labels } from './pod-identity.ts';
import { buildRoutes } from './router.ts';

export interface SelectionInput {
  /** The Origins of the namespace, as the API server returns them. */
  readonly origins: readonly unknown[];
  readonly labels: Labels;
  /** Ports the sidecar uses itself (its admin port): an Origin may not listen there. */
  readonly reservedPorts: readonly number[];
  /** The last valid version of each Origin served, by key: kept while a newer version is invalid. */
  readonly lastGood: ReadonlyMap<string, OriginManifest>;
}

export interface Selection {
  /** What to serve, oldest first. */
  readonly serve: OriginManifest[];
  /** One line per Origin that selects the pod but is not served as it is, naming the field and the fix. */
  readonly errors: string[];
}

interface RawOrigin {
  metadata?: { name?: string; namespace?: string; generation?: number; creationTimestamp?: string };
  spec?: { selector?: unknown };
}

// Informer objects are replaced, never mutated, on change: a result per object stays right.
const validated = new WeakMap<object, Validated<OriginManifest>>();

function validateCached(raw: object): Validated<OriginManifest> {
  let v = validated.get(raw);
  if (v === undefined) {
    v = validateOrigin(raw);
    validated.set(raw, v);
  }
  return v;
}

/** Whether an Origin that failed validation still selects the pod, as far as its selector can be read. */
function rawSelects(raw: RawOrigin, labels: Labels): boolean {
  const selector = raw.spec?.selector;
  if (selector === null || typeof selector !== 'object') return false;
  try {
    return selects(selector as Parameters<typeof selects>[0], labels);
  } catch {
    return false;
  }
}

const keyOf = (raw: RawOrigin) => `${raw.metadata?.namespace ?? 'default'}/${raw.metadata?.name ?? '?'}`;
const createdAt = (o: OriginManifest) =>
  (o.metadata as { creationTimestamp?: string }).creationTimestamp ?? '';

/** Oldest first; same second (creationTimestamp's resolution): by namespace/name. */
function byAge(a: OriginManifest, b: OriginManifest): number {
  const ta = Date.parse(createdAt(a));
  const tb = Date.parse(createdAt(b));
  if (ta !== tb && !Number.isNaN(ta) && !Number.isNaN(tb)) return ta - tb;
  return originKey(a).localeCompare(originKey(b));
}

/** The valid Origins that select the pod, and an invalid one's last good version if it had one. */
function candidates(input: SelectionInput, errors: string[]): OriginManifest[] {
  const out: OriginManifest[] = [];
  for (const raw of input.origins as RawOrigin[]) {
    if (raw === null || typeof raw !== 'object') continue;
    const v = validateCached(raw);
    if (v.ok) {
      if (selects(v.value.spec.selector, input.labels)) out.push(v.value);
      continue;
    }
    const key = keyOf(raw);
    const previous = input.lastGood.get(key);
    const keep = previous !== undefined && selects(previous.spec.selector, input.labels);
    if (!keep && !rawSelects(raw, input.labels)) continue;
    const generation = raw.metadata?.generation;
    const what = `Origin ${key}${generation === undefined ? '' : ` generation ${generation}`}`;
    const still = keep ? `; still serving generation ${previous.metadata.generation ?? '?'}` : '';
    errors.push(`${what} refused: ${v.errors.join('; ')}${still}`);
    if (keep) out.push(previous);
  }
  return out;
}

export function selectOrigins(input: SelectionInput): Selection {
  const errors: string[] = [];
  const accepted: OriginManifest[] = [];
  for (const o of candidates(input, errors).sort(byAge)) {
    const key = originKey(o);
    const port = o.spec.listen.port;
    if (input.reservedPorts.includes(port)) {
      errors.push(
        `${key}: spec.listen.port: ${port} is the sidecar's admin port; choose another port (not served)`,
      );
      continue;
    }
    const routes = buildRoutes(
      [...accepted, o].map((x) => ({
        key: originKey(x),
        listen: x.spec.listen,
        ...(x.spec.hosts === undefined ? {} : { hosts: x.spec.hosts }),
      })),
    );
    if (routes.errors.length > 0) {
      for (const e of routes.errors) errors.push(`${e} (${key} is newer: not served)`);
      continue;
    }
    accepted.push(o);
  }
  return { serve: accepted, errors };
}
