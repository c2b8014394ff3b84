import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { crdFiles, type JSONSchemaProps, originCRD, originReportCRD, renderCRD } from '../../src/api/crd.ts';
import { OriginReportStatus } from '../../src/api/report.ts';
import { OriginStatus } from '../../src/api/status.ts';
import { failingOriginStatus, unreachableReportStatus } from '../support/status-samples.ts';

const crdsDir = new URL('../../crds/', import.meta.url);

/** Visits every schema node with its path. */
function walk(
  node: JSONSchemaProps,
  path: string,
  visit: (node: JSONSchemaProps, path: string) => void,
): void {
  visit(node, path);
  for (const [key, sub] of Object.entries((node.properties ?? {}) as Record<string, JSONSchemaProps>)) {
    walk(sub, `${path}.${key}`, visit);
  }
  if (node.items) walk(node.items as JSONSchemaProps, `${path}[*]`, visit);
  if (typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as JSONSchemaProps, `${path}.*`, visit);
}

const schemaOf = (crd: ReturnType<typeof originCRD>) =>
  crd.spec.versions[0]?.schema.openAPIV3Schema as JSONSchemaProps;

/** The schema node a simple printer-column path (.a.b, .a[?(...)].b) leads to. */
function nodeAt(root: JSONSchemaProps, jsonPath: string): JSONSchemaProps | undefined {
  let node: JSONSchemaProps | undefined = root;
  for (const part of jsonPath
    .replace(/\[\?\(.*?\)\]/g, '[*]')
    .split('.')
    .slice(1)) {
    const [name, filter] = part.split('[');
    node = (node?.properties as Record<string, JSONSchemaProps> | undefined)?.[name ?? ''];
    if (filter !== undefined) node = node?.items as JSONSchemaProps | undefined;
  }
  return node;
}

describe('generated CRDs', () => {
  it.each(crdFiles())(
    'crds/$file is up to date with src/api (else run npm run generate:crds)',
    ({ file, crd }) => {
      const onDisk = readFileSync(new URL(file, crdsDir), 'utf8');
      expect(onDisk, `crds/${file} is stale: run npm run generate:crds`).toBe(renderCRD(crd));
      expect(parse(onDisk)).toEqual(JSON.parse(JSON.stringify(crd)));
    },
  );

  it.each(crdFiles())(
    '$file is a structural schema: every node has a type and no TypeBox-only keywords',
    ({ crd }) => {
      walk(schemaOf(crd), '', (node, path) => {
        expect(node.type, `${path} has no type`).toBeTypeOf('string');
        for (const banned of ['anyOf', 'oneOf', 'allOf', 'const', 'patternProperties', '$id']) {
          expect(node, `${path} has ${banned}`).not.toHaveProperty(banned);
        }
        expect(node.additionalProperties, `${path}: additionalProperties false is not allowed`).not.toBe(
          false,
        );
        expect(Object.getOwnPropertySymbols(node), `${path} keeps TypeBox symbols`).toEqual([]);
      });
    },
  );

  it.each(crdFiles())(
    '$file describes every field of spec and status (kubectl explain shows them)',
    ({ crd }) => {
      const root = schemaOf(crd);
      for (const part of ['spec', 'status']) {
        const node = (root.properties as Record<string, JSONSchemaProps>)[part];
        if (node === undefined) continue;
        walk(node, part, (n, path) => {
          if (!path.endsWith('[*]') && !path.endsWith('.*'))
            expect(n.description, `${path} has no description`).toBeTruthy();
        });
      }
    },
  );

  it('turns unions of literals into enums and records into additionalProperties', () => {
    const spec = (schemaOf(originCRD()).properties as Record<string, JSONSchemaProps>)
      .spec as JSONSchemaProps;
    expect(nodeAt(spec, '.errorResponse.statusProfile')).toMatchObject({
      type: 'string',
      enum: ['Uniform', 'Edgio'],
      default: 'Uniform',
    });
    expect(nodeAt(spec, '.selector.matchLabels')).toMatchObject({
      type: 'object',
      additionalProperties: { type: 'string', maxLength: 63 },
    });
  });

  it('carries the CEL rules, defaults and bounds of the Origin spec', () => {
    const spec = (schemaOf(originCRD()).properties as Record<string, JSONSchemaProps>)
      .spec as JSONSchemaProps;
    expect(spec['x-kubernetes-validations']).toEqual([
      expect.objectContaining({
        message: 'hosts must be unique: remove the repeated host',
        fieldPath: '.hosts',
      }),
    ]);
    expect(nodeAt(spec, '.upstream.tls')?.['x-kubernetes-validations']).toContainEqual(
      expect.objectContaining({ message: 'set caBundle or caFile, not both' }),
    );
    expect(nodeAt(spec, '.timeouts')).toMatchObject({ default: {} });
    expect(nodeAt(spec, '.timeouts.connect')).toMatchObject({ default: '5s', maxLength: 32 });
    expect(nodeAt(spec, '.upstream.port')).toMatchObject({ type: 'integer', minimum: 1, maximum: 65535 });
    // Fields with a default are filled in by the API server, so they are not required of the user.
    expect(nodeAt(spec, '.listen')?.required).toEqual(['port']);
    expect(spec.required).toEqual(['selector', 'listen', 'upstream']);
  });

  it('gives Origin a status subresource and OriginReport none (the sidecar writes a report in one apply)', () => {
    expect(originCRD().spec.versions[0]?.subresources).toEqual({ status: {} });
    expect(originReportCRD().spec.versions[0]?.subresources).toBeUndefined();
  });

  it.each(crdFiles())('$file printer columns point at fields of the schema', ({ crd }) => {
    const version = crd.spec.versions[0];
    for (const column of version?.additionalPrinterColumns ?? []) {
      if (column.jsonPath.startsWith('.metadata.')) continue;
      expect(nodeAt(schemaOf(crd), column.jsonPath), `${column.name}: ${column.jsonPath}`).toBeDefined();
    }
  });

  it('shows upstream, port, reachable, cause, pods and age by default, and more with -o wide', () => {
    const columns = originCRD().spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(columns.filter((c) => !c.priority).map((c) => c.name)).toEqual([
      'Upstream',
      'Port',
      'Reachable',
      'Cause',
      'Pods',
      'Age',
    ]);
    expect(columns.filter((c) => c.priority).map((c) => c.name)).toEqual([
      'Listen',
      'Ready',
      'Failing',
      'Uninjected',
      'Scope',
      'Hint',
    ]);
  });

  it('names both kinds with short names and the originguard category', () => {
    expect(originCRD().spec.names).toMatchObject({ shortNames: ['og'], categories: ['originguard'] });
    expect(originReportCRD().spec.names).toMatchObject({ shortNames: ['ogr'], categories: ['originguard'] });
  });

  it('accepts in the TypeScript schemas the same sample status and report the cluster tests write', () => {
    expect([...Value.Errors(OriginStatus, failingOriginStatus())]).toEqual([]);
    expect([...Value.Errors(OriginReportStatus, unreachableReportStatus('shop-edge-0', 'uid-1'))]).toEqual(
      [],
    );
  });
});
