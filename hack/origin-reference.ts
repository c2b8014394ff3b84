// Renders the generated part of docs/origin.md: every field of the Origin's spec
// and status with its type, default, description and validation rules, and the
// columns of `kubectl get origins`. Read from the CRD schema, which is itself
// generated from the TypeBox schemas in src/api/ (origin.ts, status.ts), so the
// doc, `kubectl explain` and the API server's validation never disagree.
// hack/generate-docs.ts writes it; test/unit/origin-docs.test.ts fails when stale.
import { type JSONSchemaProps, ORIGIN_PRINTER_COLUMNS, originCRD } from '../src/api/crd.ts';

export const START =
  '<!-- generated:start (npm run generate:docs; edits below this line are overwritten) -->';
export const END = '<!-- generated:end -->';

type Node = JSONSchemaProps & {
  type?: string;
  description?: string;
  properties?: Record<string, Node>;
  items?: Node;
  additionalProperties?: Node | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  'x-kubernetes-validations'?: { rule: string; message: string; fieldPath?: string }[];
};

/** Markdown table cell: no pipes or newlines. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string) => `\`${s}\``;

function typeOf(n: Node): string {
  if (n.enum) return `one of ${n.enum.map((v) => code(String(v))).join(', ')}`;
  if (n.type === 'array') return `array of ${n.items?.type === 'object' ? 'object' : typeOf(n.items ?? {})}`;
  if (n.type === 'object' && typeof n.additionalProperties === 'object')
    return `map of ${typeOf(n.additionalProperties)}`;
  if (n.type === 'string' && n.format === 'date-time') return 'timestamp';
  return n.type ?? '';
}

/** Validation keywords of one node, in words. */
function rules(n: Node): string[] {
  const out: string[] = [];
  const range = (lo: unknown, hi: unknown, unit: string) => {
    if (lo !== undefined && hi !== undefined) out.push(`${unit}${lo}–${hi}`);
    else if (lo !== undefined) out.push(`${unit}≥ ${lo}`);
    else if (hi !== undefined) out.push(`${unit}≤ ${hi}`);
  };
  range(n.minimum, n.maximum, '');
  range(n.minLength, n.maxLength, 'length ');
  range(n.minItems, n.maxItems, 'items ');
  if (n['x-kubernetes-list-type'] === 'map')
    out.push(`unique by ${(n['x-kubernetes-list-map-keys'] as string[]).join(', ')}`);
  if (typeof n.pattern === 'string') out.push(`pattern ${code(n.pattern)}`);
  if (typeof n.format === 'string' && n.format !== 'date-time') out.push(`format ${n.format}`);
  for (const v of n['x-kubernetes-validations'] ?? []) out.push(v.message);
  // Scalars inside arrays and maps carry their own rules.
  const inner =
    n.type === 'array'
      ? n.items
      : typeof n.additionalProperties === 'object'
        ? n.additionalProperties
        : undefined;
  if (inner !== undefined && inner.type !== 'object') {
    const each = rules(inner);
    if (each.length > 0) out.push(`each ${n.type === 'array' ? 'item' : 'value'}: ${each.join(', ')}`);
  }
  return out;
}

function defaultOf(n: Node): string {
  if (n.default === undefined) return '';
  return code(typeof n.default === 'string' ? n.default : JSON.stringify(n.default));
}

/** The object nodes to document, each with its path (arrays of objects as `path[]`). */
function objects(n: Node, path: string, out: { path: string; node: Node }[] = []) {
  if (n.type === 'object' && n.properties) {
    out.push({ path, node: n });
    for (const [key, sub] of Object.entries(n.properties)) objects(sub, `${path}.${key}`, out);
  } else if (n.type === 'array' && n.items) {
    objects(n.items, `${path}[]`, out);
  }
  return out;
}

/** One table row: a field of the object at `path`, linked to its own section when it has one. */
function row(path: string, parent: Node, key: string, sub: Node): string {
  const isObject = sub.type === 'object' && sub.properties !== undefined;
  const isObjectArray =
    sub.type === 'array' && sub.items?.type === 'object' && sub.items.properties !== undefined;
  const name = isObject
    ? `[${code(key)}](#${anchor(`${path}.${key}`)})`
    : isObjectArray
      ? `[${code(key)}](#${anchor(`${path}.${key}[]`)})`
      : code(key);
  // Rules of the parent that name this field (fieldPath) are listed with it;
  // an object's own rules are listed in its section.
  const parentRules = (parent['x-kubernetes-validations'] ?? [])
    .filter((v) => v.fieldPath === `.${key}`)
    .map((v) => v.message);
  const listed = [...(isObject ? [] : rules(sub)), ...parentRules].join('; ');
  const required = (parent.required ?? []).includes(key) ? 'yes' : '';
  return `| ${name} | ${cell(typeOf(sub))} | ${required} | ${cell(defaultOf(sub))} | ${cell(sub.description ?? '')} | ${cell(listed)} |`;
}

function section(path: string, n: Node): string {
  const lines = [`### ${code(path)}`, ''];
  // The description of an array's items lives on the array field, shown in the parent's table.
  if (n.description && !path.endsWith('[]')) lines.push(n.description, '');
  const own = (n['x-kubernetes-validations'] ?? []).filter((v) => v.fieldPath === undefined);
  for (const v of own) lines.push(`Rule: ${v.message}.`, '');
  lines.push('| field | type | required | default | description | validation |', '|---|---|---|---|---|---|');
  for (const [key, sub] of Object.entries(n.properties ?? {})) lines.push(row(path, n, key, sub));
  return lines.join('\n');
}

/** GitHub's heading anchor for a heading that is one code span. */
function anchor(path: string): string {
  return path.toLowerCase().replace(/[^a-z0-9 _-]/g, '');
}

export function renderOriginReference(): string {
  const version = originCRD().spec.versions[0];
  const root = version?.schema.openAPIV3Schema as Node;
  const spec = root.properties?.spec as Node;
  const status = root.properties?.status as Node;
  const out: string[] = [START, ''];
  out.push('## Spec reference', '');
  out.push(
    'Generated from `src/api/origin.ts` through the CRD schema. "required" means the field must be set; a field with a default may be omitted and is filled in by the API server (or, standalone, by the sidecar). Durations are Go durations (`500ms`, `5s`, `1m30s`).',
    '',
  );
  for (const { path, node } of objects(spec, 'spec')) out.push(section(path, node), '');
  out.push('## Status reference', '');
  out.push('Written only by the operator (the status subresource). Generated from `src/api/status.ts`.', '');
  for (const { path, node } of objects(status, 'status')) out.push(section(path, node), '');
  out.push('## `kubectl get origins` columns', '');
  out.push('| column | shown | from | meaning |', '|---|---|---|---|');
  out.push('| `NAME` | always | `.metadata.name` | The Origin. |');
  for (const c of version?.additionalPrinterColumns ?? ORIGIN_PRINTER_COLUMNS) {
    out.push(
      `| ${code(c.name.toUpperCase())} | ${c.priority ? 'with `-o wide`' : 'always'} | ${cell(code(c.jsonPath))} | ${cell(c.description)} |`,
    );
  }
  out.push('', END, '');
  return out.join('\n');
}

/** docs/origin.md with its generated part replaced by the current rendering. */
export function withReference(doc: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start === -1 || end === -1 || end < start)
    throw new Error(`docs/origin.md lacks the ${START} … ${END} markers`);
  return doc.slice(0, start) + renderOriginReference() + doc.slice(end + END.length).replace(/^\n+/, '');
}
