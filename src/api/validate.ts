// Validation of Origins without an API server, with the same schema and rules
// the CRD carries, and messages that name the field, the problem and the value:
//   spec.upstream.port: must be 1-65535, got 70000
import type { TSchema } from '@sinclair/typebox';
import { Kind } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { OriginManifest, rulesOf } from './origin.ts';

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: string[] };

const show = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));

/** Turns a JSON pointer (/spec/hosts/0) into a field path (spec.hosts[0]). */
export function fieldPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += /^[0-9]+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

function describeError(e: ValueError): string {
  const s = e.schema as Record<string, unknown>;
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'required';
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown field';
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.NumberMaximum:
      return `must be ${s.minimum}-${s.maximum}, got ${show(e.value)}`;
    case ValueErrorType.Integer:
      return `must be an integer, got ${show(e.value)}`;
    case ValueErrorType.String:
      return `must be a string, got ${show(e.value)}`;
    case ValueErrorType.Boolean:
      return `must be true or false, got ${show(e.value)}`;
    case ValueErrorType.Object:
      return `must be an object, got ${show(e.value)}`;
    case ValueErrorType.Array:
      return `must be a list, got ${show(e.value)}`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${s.maxItems} items, got ${(e.value as unknown[]).length}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${s.maxLength} characters, got ${(e.value as string).length}`;
    case ValueErrorType.StringMinLength:
      return 'must not be empty';
    case ValueErrorType.StringPattern: {
      // A pattern that carries its own rule (durations, CIDRs) says what it wants in that rule's words.
      const own = rulesOf(e.schema).find((r) => r.fieldPath === undefined && !r.check(e.value as never));
      if (own !== undefined) return `${own.message}, got ${show(e.value)}`;
      return `${s.description ? 'is not valid' : 'has an invalid format'}: got ${show(e.value)}`;
    }
    case ValueErrorType.Literal:
      return `must be ${show(s.const)}, got ${show(e.value)}`;
    case ValueErrorType.Union: {
      const options = ((s.anyOf as { const?: unknown }[]) ?? [])
        .map((o) => o.const)
        .filter((c) => c !== undefined);
      return options.length > 0 ? `must be one of ${options.join(', ')}, got ${show(e.value)}` : e.message;
    }
    default:
      return e.message;
  }
}

/** Runs the CEL-equivalent rules attached to schema nodes, walking schema and value together. */
function ruleErrors(schema: TSchema, value: unknown, path: string, out: string[]): void {
  for (const r of rulesOf(schema)) {
    if (!r.check(value as never)) out.push(`${path}${r.fieldPath ?? ''}: ${r.message}`);
  }
  if (value === null || typeof value !== 'object') return;
  const s = schema as unknown as Record<string | symbol, unknown>;
  if (s[Kind] === 'Object') {
    const props = s.properties as Record<string, TSchema>;
    for (const [key, sub] of Object.entries(props)) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) ruleErrors(sub, v, path === '' ? key : `${path}.${key}`, out);
    }
  } else if (s[Kind] === 'Array' && Array.isArray(value)) {
    value.forEach((item, i) => {
      ruleErrors(s.items as TSchema, item, `${path}[${i}]`, out);
    });
  }
}

/** Validates a value against a schema after applying its defaults. */
export function validate<T>(schema: TSchema, input: unknown, prefix = ''): Validated<T> {
  const value = Value.Default(schema, structuredClone(input));
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    const path = prefix + fieldPath(e.path);
    if (seen.has(path)) continue;
    seen.add(path);
    errors.push(`${path || '(root)'}: ${describeError(e)}`);
  }
  if (errors.length === 0) ruleErrors(schema, value, prefix, errors);
  return errors.length === 0 ? { ok: true, value: value as T } : { ok: false, errors };
}

export function validateOrigin(input: unknown): Validated<OriginManifest> {
  return validate<OriginManifest>(OriginManifest, input);
}

/** An Origin as read from the API server (status, managed fields and all): its manifest validated, defaults applied. */
export function validateOriginObject(o: {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly metadata: unknown;
  readonly spec: unknown;
}): Validated<OriginManifest> {
  return validateOrigin({ apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata, spec: o.spec });
}
