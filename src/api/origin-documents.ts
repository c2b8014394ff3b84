// Origins from YAML text, as they would be applied to a cluster: every
// document checked to be an Origin and validated with the CRD's own schema and
// rules, each problem named with its document and field. The sidecar's
// --config file and `originguard diagnose --config` read files through this.
import { parseAllDocuments } from 'yaml';
import { originKey } from './contract.ts';
import { API_VERSION, type OriginManifest } from './origin.ts';
import { validateOrigin } from './validate.ts';

export interface ParsedOrigins {
  readonly origins: OriginManifest[];
  /** One line per problem; empty when every document is a valid Origin. */
  readonly errors: string[];
}

/** Parses and validates every document of `text`; `source` names the file in messages. */
export function parseOrigins(text: string, source: string): ParsedOrigins {
  const errors: string[] = [];
  const origins: OriginManifest[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const where = `${source}: document ${i + 1}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) errors.push(`${where}: YAML: ${e.message.split('\n')[0]}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const kind = (value as { kind?: unknown }).kind;
    const apiVersion = (value as { apiVersion?: unknown }).apiVersion;
    if (kind !== 'Origin' || apiVersion !== API_VERSION) {
      errors.push(
        `${where}: expected apiVersion: ${API_VERSION}, kind: Origin; got apiVersion: ${String(apiVersion)}, kind: ${String(kind)}`,
      );
      return;
    }
    const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
    const result = validateOrigin(value);
    if (!result.ok) {
      for (const e of result.errors) errors.push(`${where} (Origin ${String(name)}): ${e}`);
      return;
    }
    origins.push(result.value);
  });
  const seen = new Set<string>();
  for (const o of origins) {
    const key = originKey(o);
    if (seen.has(key)) errors.push(`${source}: Origin ${key} is declared twice`);
    seen.add(key);
  }
  return { origins, errors };
}
