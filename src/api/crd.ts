// The CustomResourceDefinitions, built from the TypeBox schemas so that the
// types the program uses and the schema the API server enforces cannot drift.
// Pure: hack/generate-crds.ts writes the result to crds/, and a unit test
// rebuilds it in memory to catch a stale crds/.
import { Kind, type TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { CrdSchemaError } from './errors.ts';
import { GROUP, OriginSpec, rulesOf, VERSION } from './origin.ts';
import { OriginReportStatus, REPORT_KIND } from './report.ts';
import { OriginStatus } from './status.ts';

/** An OpenAPI v3 schema node as apiextensions.k8s.io/v1 accepts it (structural). */
export type JSONSchemaProps = { [key: string]: unknown };

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced';
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources?: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      selectableFields?: { jsonPath: string }[];
    }[];
  };
}

// Keywords a structural schema may carry, copied as they are.
const KEPT = [
  'description',
  'type',
  'format',
  'default',
  'enum',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'pattern',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'nullable',
] as const;

const kindOf = (schema: TSchema): string => (schema as unknown as Record<symbol, string>)[Kind] ?? '';

function copyKeywords(schema: TSchema): JSONSchemaProps {
  const out: JSONSchemaProps = {};
  for (const key of KEPT) if (schema[key] !== undefined) out[key] = structuredClone(schema[key]);
  // kubectl explain shows descriptions but not defaults, so a scalar default is spelled out.
  const scalarDefault = ['string', 'number', 'boolean'].includes(typeof schema.default);
  if (scalarDefault && typeof out.description === 'string' && !/\bdefault\b/i.test(out.description)) {
    out.description = `${out.description} Default: ${schema.default}.`;
  }
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith('x-kubernetes-')) out[key] = structuredClone(value);
  }
  return out;
}

/** A union of literals (TypeBox) is an enum (OpenAPI); other unions are not structural. */
function enumOf(schema: TSchema, path: string): JSONSchemaProps {
  const options = (schema.anyOf as TSchema[]).map((o) => {
    if (kindOf(o) !== 'Literal')
      throw new CrdSchemaError(`${path}: only unions of literals can become a CRD schema`);
    return o;
  });
  const types = new Set(options.map((o) => o.type as string));
  if (types.size !== 1) throw new CrdSchemaError(`${path}: an enum must have values of one type`);
  return { ...copyKeywords(schema), type: [...types][0], enum: options.map((o) => o.const) };
}

function objectOf(schema: TSchema, path: string): JSONSchemaProps {
  const properties: Record<string, JSONSchemaProps> = {};
  for (const [key, sub] of Object.entries(schema.properties as Record<string, TSchema>)) {
    properties[key] = toStructural(sub, `${path}.${key}`);
  }
  // A field with a default is filled in by the API server before validation, so it is
  // not required of the user (and `kubectl explain` must not say it is).
  const required = ((schema.required as string[] | undefined) ?? []).filter(
    (key) => (schema.properties as Record<string, TSchema>)[key]?.default === undefined,
  );
  return {
    ...copyKeywords(schema),
    type: 'object',
    properties,
    ...(required.length > 0 ? { required } : {}),
  };
}

/**
 * Converts a TypeBox schema to a structural OpenAPI v3 schema: unions of literals
 * become `enum`, records become `additionalProperties`, TypeBox's own keys are
 * dropped (`additionalProperties: false` is the API server's pruning already), and
 * the CEL rules attached with withRules() become `x-kubernetes-validations`.
 */
export function toStructural(schema: TSchema, path = ''): JSONSchemaProps {
  let out: JSONSchemaProps;
  switch (kindOf(schema)) {
    case 'Object':
      out = objectOf(schema, path);
      break;
    case 'Record': {
      const values = Object.values(schema.patternProperties as Record<string, TSchema>);
      if (values.length !== 1 || values[0] === undefined)
        throw new CrdSchemaError(`${path}: a record needs one value schema`);
      out = {
        ...copyKeywords(schema),
        type: 'object',
        additionalProperties: toStructural(values[0], `${path}.*`),
      };
      break;
    }
    case 'Array':
      out = {
        ...copyKeywords(schema),
        type: 'array',
        items: toStructural(schema.items as TSchema, `${path}[*]`),
      };
      break;
    case 'Union':
      out = enumOf(schema, path);
      break;
    case 'Literal':
      out = { ...copyKeywords(schema), enum: [schema.const] };
      break;
    case 'Unsafe':
      // Type.Unsafe wraps a plain schema to give it a narrower TypeScript type.
      out = schema.anyOf ? enumOf(schema, path) : copyKeywords(schema);
      break;
    case 'String':
    case 'Integer':
    case 'Number':
    case 'Boolean':
      out = copyKeywords(schema);
      break;
    default:
      throw new CrdSchemaError(
        `${path || '(root)'}: TypeBox kind ${kindOf(schema) || '(none)'} has no CRD equivalent`,
      );
  }
  const rules = rulesOf(schema);
  // A pattern that a rule also checks is left to the rule, whose message says what is expected.
  if (rules.some((r) => r.rule === `self.matches(r'${schema.pattern}')`)) delete out.pattern;
  if (rules.length > 0) {
    out['x-kubernetes-validations'] = rules.map((r) => ({
      rule: r.rule,
      message: r.message,
      ...(r.fieldPath === undefined ? {} : { fieldPath: r.fieldPath }),
    }));
  }
  return out;
}

function resourceSchema(
  description: string,
  parts: Record<string, JSONSchemaProps>,
  required: string[],
): JSONSchemaProps {
  return {
    description,
    type: 'object',
    properties: {
      apiVersion: {
        description: `APIVersion of this object: ${GROUP}/${VERSION}.`,
        type: 'string',
      },
      kind: { description: 'Kind of this object.', type: 'string' },
      metadata: { type: 'object' },
      ...parts,
    },
    ...(required.length > 0 ? { required } : {}),
  };
}

const LABELS = { 'app.kubernetes.io/name': 'originguard', 'app.kubernetes.io/part-of': 'originguard' };
const CATEGORY = 'originguard';
const AGE: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

export const ORIGIN_PRINTER_COLUMNS: PrinterColumn[] = [
  {
    name: 'Upstream',
    type: 'string',
    jsonPath: '.spec.upstream.host',
    description: 'Origin host the sidecar forwards to.',
  },
  { name: 'Port', type: 'integer', jsonPath: '.spec.upstream.port', description: 'Origin port.' },
  {
    name: 'Reachable',
    type: 'string',
    jsonPath: '.status.reachable',
    description: 'Whether the selected pods reach the origin: True, False or Unknown.',
  },
  {
    name: 'Cause',
    type: 'string',
    jsonPath: '.status.cause',
    description: 'Why the origin is unreachable (RFC 9209).',
  },
  {
    name: 'Pods',
    type: 'string',
    jsonPath: '.status.podsSummary',
    description: 'Pods reaching the origin / pods selected.',
  },
  AGE,
  {
    name: 'Listen',
    type: 'integer',
    jsonPath: '.spec.listen.port',
    description: 'Port the sidecar listens on.',
    priority: 1,
  },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: 'The Ready condition.',
    priority: 1,
  },
  {
    name: 'Failing',
    type: 'integer',
    jsonPath: '.status.pods.failing',
    description: 'Pods failing to reach the origin.',
    priority: 1,
  },
  {
    name: 'Uninjected',
    type: 'integer',
    jsonPath: '.status.notInjected.count',
    description: 'Selected pods running without the sidecar; restart the workload to inject them.',
    priority: 1,
  },
  {
    name: 'Scope',
    type: 'string',
    jsonPath: '.status.triangulation.scope',
    description:
      "Where the failure is, comparing pods, nodes, zones and the operator's probe: Origin, PodPath, Nodes, Zones, SomePods, AllPods, or None.",
    priority: 1,
  },
  { name: 'Hint', type: 'string', jsonPath: '.status.hint', description: 'What to check.', priority: 1 },
];

export const REPORT_PRINTER_COLUMNS: PrinterColumn[] = [
  {
    name: 'Origin',
    type: 'string',
    jsonPath: '.status.originName',
    description: 'Origin the report is about.',
  },
  {
    name: 'Pod',
    type: 'string',
    jsonPath: '.status.podName',
    description: 'Pod whose sidecar wrote the report.',
  },
  {
    name: 'Health',
    type: 'string',
    jsonPath: '.status.health',
    description: 'Reachable, Unreachable or Unknown.',
  },
  {
    name: 'Cause',
    type: 'string',
    jsonPath: '.status.cause',
    description: 'Why the origin is unreachable (RFC 9209).',
  },
  AGE,
  {
    name: 'Generation',
    type: 'integer',
    jsonPath: '.status.originGeneration',
    description: 'Origin generation the sidecar runs.',
    priority: 1,
  },
  {
    name: 'Failures',
    type: 'integer',
    jsonPath: '.status.failures',
    description: 'Upstream failures since start.',
    priority: 1,
  },
  {
    name: 'Heartbeat',
    type: 'date',
    jsonPath: '.status.heartbeatTime',
    description: 'Last write by the sidecar.',
    priority: 1,
  },
];

/** The parts in which the two CRDs differ; the rest is shared. */
type CrdVersion = CustomResourceDefinition['spec']['versions'][number];

interface CrdShape {
  readonly kind: string;
  readonly plural: string;
  readonly shortName: string;
  readonly openAPIV3Schema: JSONSchemaProps;
  readonly version: Omit<CrdVersion, 'name' | 'served' | 'storage' | 'schema'>;
}

function crd(shape: CrdShape): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${shape.plural}.${GROUP}`, labels: LABELS },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: shape.kind,
        listKind: `${shape.kind}List`,
        plural: shape.plural,
        singular: shape.kind.toLowerCase(),
        shortNames: [shape.shortName],
        categories: [CATEGORY],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: shape.openAPIV3Schema },
          ...shape.version,
        },
      ],
    },
  };
}

export function originCRD(): CustomResourceDefinition {
  return crd({
    kind: 'Origin',
    plural: 'origins',
    shortName: 'og',
    openAPIV3Schema: resourceSchema(
      'An upstream origin and the pods that serve edge traffic for it. The operator injects the originguard sidecar into those pods; the sidecar forwards to the origin and answers 531/536 with the precise cause when it cannot, and status shows that cause.',
      { spec: toStructural(OriginSpec, 'spec'), status: toStructural(OriginStatus, 'status') },
      ['spec'],
    ),
    version: { subresources: { status: {} }, additionalPrinterColumns: ORIGIN_PRINTER_COLUMNS },
  });
}

export function originReportCRD(): CustomResourceDefinition {
  return crd({
    kind: REPORT_KIND,
    plural: 'originreports',
    shortName: 'ogr',
    openAPIV3Schema: resourceSchema(
      "What one pod's sidecar observes about one Origin. Written by that sidecar, owned by its pod, read by the operator to compute the Origin's status. No status subresource: the sidecar writes the whole report in one server-side apply.",
      { status: toStructural(OriginReportStatus, 'status') },
      ['status'],
    ),
    version: {
      additionalPrinterColumns: REPORT_PRINTER_COLUMNS,
      // Exact lookups by field, where the labels hold shortened names.
      selectableFields: [{ jsonPath: '.status.originName' }, { jsonPath: '.status.podName' }],
    },
  });
}

/** Every CRD with the file it lives in under crds/. */
export function crdFiles(): { file: string; crd: CustomResourceDefinition }[] {
  return [originCRD(), originReportCRD()].map((crd) => ({ file: `${crd.metadata.name}.yaml`, crd }));
}

/** The YAML text of a CRD as it is kept in crds/. */
export function renderCRD(crd: CustomResourceDefinition): string {
  return `# Generated from src/api/ by \`npm run generate:crds\`; do not edit.\n---\n${stringify(crd, { lineWidth: 120 })}`;
}
