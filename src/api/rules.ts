// Validation rules attached to schema nodes: each is a CEL expression for the
// CRD (x-kubernetes-validations) with the same predicate in TypeScript, so a
// standalone sidecar refuses exactly what the API server refuses.
import type { TSchema } from '@sinclair/typebox';

/** A CEL rule for the CRD plus the same rule as a TypeScript predicate for the program. */
export interface Rule {
  /** CEL expression over `self`, as the API server evaluates it. */
  readonly rule: string;
  /** Message shown when the rule fails; names the field and the fix. */
  readonly message: string;
  /** Field the message is about, relative to the schema node (CRD `fieldPath`). */
  readonly fieldPath?: string;
  /** The same predicate, for programs that validate without an API server. */
  readonly check: (self: never) => boolean;
}

const RULES = Symbol.for('originguard.rules');

/** Attaches rules to a schema node; the CRD generator turns them into x-kubernetes-validations. */
export function withRules<T extends TSchema>(schema: T, rules: readonly Rule[]): T {
  return Object.assign(schema, { [RULES]: rules });
}

export function rulesOf(schema: TSchema): readonly Rule[] {
  return (schema as unknown as Record<symbol, readonly Rule[] | undefined>)[RULES] ?? [];
}
