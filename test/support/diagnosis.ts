// Helpers for the diagnose tests: run the library against a URL or an Origin
// manifest, and check every result against the published schema.
import { Value } from '@sinclair/typebox/value';
import { expect } from 'vitest';
import type { OriginManifest } from '../../src/api/origin.ts';
import { diagnose } from '../../src/diagnose/diagnosis.ts';
import { type PlanFlags, parseTarget, planForAddress, planForOrigin } from '../../src/diagnose/plan.ts';
import { Diagnosis } from '../../src/diagnose/schema.ts';
import type { Vantage } from '../../src/diagnose/vantage.ts';

/** The JSON form of a diagnosis, checked against the v1 schema (every error listed on failure). */
export function expectValidDiagnosis(value: unknown): Diagnosis {
  const json: unknown = JSON.parse(JSON.stringify(value));
  expect([...Value.Errors(Diagnosis, json)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  return json as Diagnosis;
}

/** Diagnoses a URL or host:port with short timeouts unless flags say otherwise. */
export async function diagnoseTarget(
  input: string,
  flags: PlanFlags = {},
  vantage?: Vantage,
): Promise<Diagnosis> {
  const plan = planForAddress(input, parseTarget(input), {
    connectTimeoutMs: 1000,
    responseTimeoutMs: 1000,
    ...flags,
  });
  return expectValidDiagnosis(await diagnose(plan, vantage === undefined ? {} : { vantage }));
}

/** Diagnoses an Origin as its sidecar would connect to it. */
export async function diagnoseOrigin(
  manifest: OriginManifest,
  flags: PlanFlags = {},
  vantage?: Vantage,
): Promise<Diagnosis> {
  const plan = planForOrigin('origin/test', manifest, flags, () => undefined);
  return expectValidDiagnosis(await diagnose(plan, vantage === undefined ? {} : { vantage }));
}

/** The steps of one phase, as `address ok cause` lines: what a reader of the checklist sees. */
export function stepLines(d: Diagnosis, phase: string): string[] {
  return d.steps.filter((s) => s.phase === phase).map((s) => `${s.address} ${s.ok ? 'ok' : s.cause}`);
}
