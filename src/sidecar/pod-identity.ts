// Who the sidecar is in the cluster: its pod's name, namespace, UID and service
// account from the downward-API environment the webhook injects, its
// credentials' files, and the pod's labels from the downward-API file next to
// the token (labels can change while the pod runs, so they are a file the
// kubelet refreshes, not environment).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LABELS_FILE, SIDECAR_ENV } from '../api/contract.ts';
import { MissingEnvError, PodLabelsError } from './errors.ts';

/** The pod a sidecar runs in: what its reports name and own. */
export interface PodIdentity {
  readonly podName: string;
  readonly namespace: string;
  readonly podUid: string;
  readonly serviceAccount: string;
  /** The node it runs on; absent in pods injected by an operator that did not pass it. */
  readonly nodeName?: string | undefined;
}

/** Identity plus where the pod's credentials are mounted. */
export interface PodEnvironment extends PodIdentity {
  readonly tokenFile: string;
  readonly caFile: string;
  readonly labelsFile: string;
}

export type Labels = Readonly<Record<string, string>>;

const REQUIRED: readonly [Exclude<keyof typeof SIDECAR_ENV, 'nodeName'>, string][] = [
  ['podName', "the pod's name"],
  ['podNamespace', "the pod's namespace"],
  ['podUid', "the pod's UID"],
  ['serviceAccount', "the pod's service account"],
  ['tokenFile', 'the path of the pod-bound service-account token'],
  ['caFile', "the path of the cluster's CA certificate"],
];

/**
 * Reads the injected environment; throws MissingEnvError naming the first variable
 * missing. The labels file is `labels` next to the token unless `labelsFile` is given.
 */
export function podEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  labelsFile: string | undefined = undefined,
): PodEnvironment {
  const value = {} as Record<(typeof REQUIRED)[number][0], string>;
  for (const [key, what] of REQUIRED) {
    const v = env[SIDECAR_ENV[key]];
    if (v === undefined || v === '') throw new MissingEnvError(SIDECAR_ENV[key], what);
    value[key] = v;
  }
  return {
    podName: value.podName,
    namespace: value.podNamespace,
    podUid: value.podUid,
    serviceAccount: value.serviceAccount,
    ...(env[SIDECAR_ENV.nodeName] ? { nodeName: env[SIDECAR_ENV.nodeName] } : {}),
    tokenFile: value.tokenFile,
    caFile: value.caFile,
    labelsFile: labelsFile ?? join(dirname(value.tokenFile), LABELS_FILE),
  };
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

// One token of a Go quoted string: a run of plain text or one escape.
const GO_TOKEN = /[^\\]+|\\(?:x[0-9a-fA-F]{2}|[0-7]{3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\"'])/y;

/** The bytes a token stands for: \xNN and \NNN are bytes, the rest are UTF-8 text. */
function tokenBytes(token: string): Buffer {
  if (!token.startsWith('\\')) return Buffer.from(token, 'utf8');
  const kind = token[1] as string;
  const rest = token.slice(2);
  if (kind === 'x') return Buffer.of(Number.parseInt(rest, 16));
  if (kind === 'u' || kind === 'U')
    return Buffer.from(String.fromCodePoint(Number.parseInt(rest, 16)), 'utf8');
  if (/[0-7]/.test(kind)) return Buffer.of(Number.parseInt(token.slice(1), 8));
  return Buffer.from(SIMPLE_ESCAPES[kind] as string, 'utf8');
}

/**
 * Undoes Go's strconv.Quote (what `%q` writes): simple escapes, \xNN bytes,
 * \NNN octal bytes, \uNNNN and \UNNNNNNNN code points. Bytes are collected and
 * decoded as UTF-8 at the end, since \xNN escapes may spell one multi-byte rune.
 */
export function goUnquote(quoted: string): string {
  if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) {
    throw new PodLabelsError(`not a Go quoted string: ${quoted}`);
  }
  const body = quoted.slice(1, -1);
  const parts: Buffer[] = [];
  GO_TOKEN.lastIndex = 0;
  while (GO_TOKEN.lastIndex < body.length) {
    const at = GO_TOKEN.lastIndex;
    const m = GO_TOKEN.exec(body);
    if (m === null) throw new PodLabelsError(`bad escape at character ${at + 2} of ${quoted}`);
    parts.push(tokenBytes(m[0]));
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * Parses the kubelet's downward-API rendering of metadata.labels: one
 * `key="value"` line per label, sorted, the value quoted as Go's %q does.
 */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [n, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new PodLabelsError(`line ${n + 1}: expected key="value", got ${JSON.stringify(line)}`);
    try {
      labels[line.slice(0, eq)] = goUnquote(line.slice(eq + 1));
    } catch (err) {
      throw new PodLabelsError(`line ${n + 1}: ${(err as Error).message}`);
    }
  }
  return labels;
}

/** Reads and parses the labels file; the error names the file. */
export async function readLabelsFile(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PodLabelsError(`cannot read the pod's labels from ${path}: ${(err as Error).message}`);
  }
  try {
    return parseLabels(text);
  } catch (err) {
    throw new PodLabelsError(`${path}: ${(err as Error).message}`);
  }
}
