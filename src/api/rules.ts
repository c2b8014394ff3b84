// Validation rules attached to schema nodes: each is a CEL expression for the
// CRD (x-kubernetes-validations) with the same predicate in TypeScript, so a
// standalone sidecar refuses exactly what the API server refuses. Also the
// duration field and its range rule, which every part of the spec uses.
import { type TSchema, Type } from '@sinclair/typebox';
import { DURATION_PATTERN, parseDuration } from './duration.ts';

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

/** CEL: `field` of self is present and a well-formed duration (else the field's own rule reports it). */
export const celIsDuration = (field: string) =>
  `has(self.${field}) && self.${field}.matches(r'${DURATION_PATTERN}')`;

// The duration's own rule repeats the pattern so the API server's message says what a
// duration looks like; the CRD generator then leaves the redundant `pattern` out.
const durationRule: Rule = {
  rule: `self.matches(r'${DURATION_PATTERN}')`,
  message: 'must be a duration such as 250ms, 5s or 1m30s',
  check: (self: string) => new RegExp(DURATION_PATTERN).test(self),
};

export const duration = (description: string, defaultValue?: string) =>
  withRules(
    Type.String({
      description,
      pattern: DURATION_PATTERN,
      maxLength: 32,
      ...(defaultValue === undefined ? {} : { default: defaultValue }),
    }),
    [durationRule],
  );

// A malformed or absent duration passes: the field's own rule reports it, and CEL's
// duration() would fail with an error instead of a message.
export const durationBetween = (field: string, min: string, max: string): Rule => ({
  rule: `!(${celIsDuration(field)}) || (duration(self.${field}) >= duration('${min}') && duration(self.${field}) <= duration('${max}'))`,
  message: `must be between ${min} and ${max}`,
  fieldPath: `.${field}`,
  check: (self: Record<string, string | undefined>) => {
    const ms = parseDuration(self[field] ?? '');
    return Number.isNaN(ms) || (ms >= parseDuration(min) && ms <= parseDuration(max));
  },
});
