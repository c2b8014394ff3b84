// The kubelet's share of a pod's volumes, for pod-runner.ts: projected volumes
// (pod-bound service-account tokens, ConfigMap and Secret items, downward-API
// files) and plain configMap, secret, downwardAPI and emptyDir volumes, written
// into a directory per volume. Field values and the downward-API rendering are
// pure functions, the same formatting the kubelet uses (pkg/fieldpath).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KubeClient } from '../src/kube/client.ts';

interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}
interface DownwardItem {
  path: string;
  fieldRef?: { fieldPath: string };
  resourceFieldRef?: unknown;
  mode?: number;
}
interface ObjectSource {
  name?: string;
  secretName?: string;
  items?: KeyToPath[];
  optional?: boolean;
  defaultMode?: number;
}
interface ProjectionSource {
  serviceAccountToken?: { path: string; expirationSeconds?: number; audience?: string };
  configMap?: ObjectSource;
  secret?: ObjectSource;
  downwardAPI?: { items?: DownwardItem[] };
}
export interface Volume {
  name: string;
  projected?: { sources?: ProjectionSource[]; defaultMode?: number };
  configMap?: ObjectSource;
  secret?: ObjectSource;
  downwardAPI?: { items?: DownwardItem[]; defaultMode?: number };
  emptyDir?: object;
}

/** The parts of a Pod (as the API server returns it) that the kubelet's work here reads. */
export interface PodLike {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    serviceAccountName?: string;
    nodeName?: string;
    volumes?: Volume[];
    terminationGracePeriodSeconds?: number;
  };
  status?: { podIP?: string; hostIP?: string };
}

// The "pod" runs as a process in the host's network namespace and serves on
// loopback, so that is its address (there is no pod IP: no kubelet, no CNI).
const LOOPBACK = '127.0.0.1';

/** Go's strconv.Quote, which the kubelet's `%q` uses for downward-API label and annotation values. */
export function goQuote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) out += ch;
    else if (GO_ESCAPES[ch] !== undefined) out += GO_ESCAPES[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}
const GO_ESCAPES: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

/** fieldpath.FormatMap: `key="value"` lines sorted by key, no trailing newline. */
export function formatMap(map: Record<string, string> = {}): string {
  return Object.keys(map)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${goQuote(map[k] ?? '')}`)
    .join('\n');
}

/** The value of a downward-API fieldRef, for env and volume files; throws for paths it does not know. */
export function fieldValue(pod: PodLike, fieldPath: string): string {
  const subscript = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (subscript !== null)
    return pod.metadata[subscript[1] as 'labels' | 'annotations']?.[subscript[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'metadata.labels':
      return formatMap(pod.metadata.labels);
    case 'metadata.annotations':
      return formatMap(pod.metadata.annotations);
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'status.podIP':
    case 'status.podIPs':
      return pod.status?.podIP ?? LOOPBACK;
    case 'status.hostIP':
    case 'status.hostIPs':
      return pod.status?.hostIP ?? LOOPBACK;
    default:
      throw new Error(`fieldRef ${fieldPath}: not supported by the pod runner`);
  }
}

/** Writes through a temp file and a rename, so a reader never sees half a file (the kubelet swaps a symlink). */
async function writeAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
}

/** A volume written to disk; `refresh` rewrites what the kubelet keeps current. */
export interface MaterializedVolumes {
  /** Host directory of each volume, by volume name. */
  readonly dirs: ReadonlyMap<string, string>;
  /** Rewrites the downward-API files from `pod` (the kubelet does so when labels or annotations change). */
  refreshDownwardApi(pod: PodLike): Promise<void>;
  /** Stops refreshing tokens. */
  close(): void;
}

/**
 * Writes the named volumes of `pod` under `root/<volume name>`, reading tokens,
 * ConfigMaps and Secrets through `client` (with the rights of the kubelet, which
 * an admin client has). Token files are renewed at 80 % of their lifetime, as the
 * kubelet does.
 */
export async function materializeVolumes(
  pod: PodLike,
  names: readonly string[],
  client: KubeClient,
  root: string,
): Promise<MaterializedVolumes> {
  const dirs = new Map<string, string>();
  const renewals: Renewals = { closed: false, timers: new Set() };
  const downward: ((p: PodLike) => Promise<void>)[] = [];
  for (const name of new Set(names)) {
    const volume = pod.spec.volumes?.find((v) => v.name === name);
    if (volume === undefined) throw new Error(`volume ${name}: mounted but not declared in the pod`);
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    dirs.set(name, dir);
    const writers = volumeWriters(pod, volume, client, dir, renewals);
    for (const w of writers.once) await w();
    downward.push(...writers.downward);
  }
  const refreshDownwardApi = async (next: PodLike) => {
    for (const write of downward) await write(next);
  };
  await refreshDownwardApi(pod);
  return {
    dirs,
    refreshDownwardApi,
    close() {
      renewals.closed = true;
      for (const t of renewals.timers) clearTimeout(t);
    },
  };
}

/** Pending token renewals; none is scheduled once closed. */
interface Renewals {
  closed: boolean;
  timers: Set<NodeJS.Timeout>;
}

interface Writers {
  once: (() => Promise<void>)[];
  downward: ((pod: PodLike) => Promise<void>)[];
}

/** Plain configMap, secret and downwardAPI volumes are written as a projected volume of one source. */
function asProjection(volume: Volume): { sources: ProjectionSource[]; mode: number } {
  const mode = (m: number | undefined) => m ?? 0o644;
  if (volume.projected !== undefined)
    return { sources: volume.projected.sources ?? [], mode: mode(volume.projected.defaultMode) };
  if (volume.configMap !== undefined)
    return { sources: [{ configMap: volume.configMap }], mode: mode(volume.configMap.defaultMode) };
  if (volume.secret !== undefined)
    return { sources: [{ secret: volume.secret }], mode: mode(volume.secret.defaultMode) };
  if (volume.downwardAPI !== undefined)
    return { sources: [{ downwardAPI: volume.downwardAPI }], mode: mode(volume.downwardAPI.defaultMode) };
  if (volume.emptyDir !== undefined) return { sources: [], mode: 0o644 };
  const kind = Object.keys(volume).filter((k) => k !== 'name');
  throw new Error(`volume ${volume.name}: ${kind.join()} volumes are not supported by the pod runner`);
}

function volumeWriters(
  pod: PodLike,
  volume: Volume,
  client: KubeClient,
  dir: string,
  renewals: Renewals,
): Writers {
  const w: Writers = { once: [], downward: [] };
  const ns = pod.metadata.namespace;
  const { sources, mode } = asProjection(volume);
  for (const source of sources) {
    const { serviceAccountToken: sat, configMap, secret, downwardAPI } = source;
    if (sat !== undefined)
      w.once.push(() => writeToken(pod, sat, client, join(dir, sat.path), mode, renewals));
    else if (configMap !== undefined)
      w.once.push(() => writeObjectItems(client, ns, 'configmaps', configMap, dir, mode));
    else if (secret !== undefined)
      w.once.push(() => writeObjectItems(client, ns, 'secrets', secret, dir, mode));
    else if (downwardAPI !== undefined)
      w.downward.push((p) => writeDownwardItems(p, downwardAPI.items ?? [], dir, mode, volume.name));
    else
      throw new Error(`volume ${volume.name}: projected source ${Object.keys(source).join()} not supported`);
  }
  return w;
}

async function writeDownwardItems(
  pod: PodLike,
  items: DownwardItem[],
  dir: string,
  defaultMode: number,
  volume: string,
): Promise<void> {
  for (const item of items) {
    if (item.fieldRef === undefined)
      throw new Error(`volume ${volume}: ${item.path}: only fieldRef is supported`);
    await writeAtomic(
      join(dir, item.path),
      fieldValue(pod, item.fieldRef.fieldPath),
      item.mode ?? defaultMode,
    );
  }
}

/** ConfigMap or Secret keys as files: `items` if given, else every key. */
async function writeObjectItems(
  client: KubeClient,
  namespace: string,
  plural: 'configmaps' | 'secrets',
  source: ObjectSource,
  dir: string,
  defaultMode: number,
): Promise<void> {
  const name = source.name ?? source.secretName ?? '';
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`;
  const object = await waitForObject(client, path, source.optional === true);
  if (object === undefined) return;
  const data = new Map<string, Buffer>();
  const decode = plural === 'secrets' ? 'base64' : 'utf8';
  for (const [k, v] of Object.entries(object.data ?? {})) data.set(k, Buffer.from(v, decode));
  for (const [k, v] of Object.entries(object.binaryData ?? {})) data.set(k, Buffer.from(v, 'base64'));
  const items: KeyToPath[] = source.items ?? [...data.keys()].map((key) => ({ key, path: key }));
  for (const item of items) {
    const value = data.get(item.key);
    if (value === undefined) {
      if (source.optional === true) continue;
      throw new Error(`${plural} ${namespace}/${name} has no key ${item.key}`);
    }
    await writeAtomic(join(dir, item.path), value, item.mode ?? defaultMode);
  }
}

// The kubelet retries a missing ConfigMap until it appears (the pod stays in
// ContainerCreating); kube-root-ca.crt, for one, appears a moment after its namespace.
async function waitForObject(
  client: KubeClient,
  path: string,
  optional: boolean,
): Promise<{ data?: Record<string, string>; binaryData?: Record<string, string> } | undefined> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const object = await client.get<{ data?: Record<string, string>; binaryData?: Record<string, string> }>(
      path,
    );
    if (object !== undefined || optional) return object;
    if (Date.now() > deadline)
      throw new Error(`${path}: not found after 15 s (the kubelet would keep waiting)`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A token from the TokenRequest API, bound to this pod, as the kubelet requests it for a projected volume. */
async function writeToken(
  pod: PodLike,
  source: NonNullable<ProjectionSource['serviceAccountToken']>,
  client: KubeClient,
  file: string,
  mode: number,
  renewals: Renewals,
): Promise<void> {
  const { name, namespace, uid } = pod.metadata;
  const sa = pod.spec.serviceAccountName ?? 'default';
  const answer = await client.create<{ status: { token: string; expirationTimestamp: string } }>(
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(sa)}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        // No audience: the API server's own, as for the kubelet.
        ...(source.audience ? { audiences: [source.audience] } : {}),
        expirationSeconds: source.expirationSeconds ?? 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
      },
    },
  );
  await writeAtomic(file, answer.status.token, mode);
  // Renew at 80 % of the lifetime granted (the API server may extend it), at most daily.
  const lifetimeMs = Date.parse(answer.status.expirationTimestamp) - Date.now();
  const renew = (inMs: number): void => {
    if (renewals.closed) return;
    const timer = setTimeout(() => {
      renewals.timers.delete(timer);
      writeToken(pod, source, client, file, mode, renewals).catch((err: unknown) => {
        console.error(`[pod-runner] renewing ${file} (retrying in 10 s): ${(err as Error).message}`);
        renew(10_000);
      });
    }, inMs);
    timer.unref();
    renewals.timers.add(timer);
  };
  renew(Math.min(Math.max(lifetimeMs * 0.8, 1_000), 24 * 3600_000));
}
