// Where the operator's and the CLI's credentials come from, as kubectl finds
// them: --kubeconfig, else KUBECONFIG, else ~/.kube/config, else the pod's service
// account. The common cases are read here without @kubernetes/client-node: in a pod
// (how the chart runs the operator) and a kubeconfig with a token, a token file or
// a client certificate. Anything else (exec plugins, auth providers, a merged
// KUBECONFIG list) goes to client-node, loaded only then: it costs tens of MB.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Credentials } from './client.ts';
import { KubeConfigError } from './errors.ts';
import { inClusterCredentials } from './in-cluster.ts';

export interface KubeConfigSource {
  /** Path of a kubeconfig; else KUBECONFIG, ~/.kube/config or the in-cluster service account. */
  kubeconfig?: string | undefined;
  /** Context to use instead of the kubeconfig's current one (kubectl's --context). */
  context?: string | undefined;
}

export type KubeConfigCredentials = Credentials & {
  /** The namespace the context names (in a pod: the pod's), as kubectl defaults to it. */
  namespace: string | undefined;
};

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export async function loadKubeConfig(source: KubeConfigSource = {}): Promise<KubeConfigCredentials> {
  const files = kubeconfigFiles(source);
  if (files.length === 0 && process.env.KUBERNETES_SERVICE_HOST && source.context === undefined) {
    const creds = inClusterCredentials({
      tokenFile: `${SERVICE_ACCOUNT}/token`,
      caFile: `${SERVICE_ACCOUNT}/ca.crt`,
    });
    return { ...creds, namespace: readOptional(`${SERVICE_ACCOUNT}/namespace`) };
  }
  if (files.length === 0 && !process.env.KUBERNETES_SERVICE_HOST) {
    throw new KubeConfigError(
      'no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a pod',
    );
  }
  if (files.length === 1) {
    const file = files[0] as string;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KubeConfigError(`cannot read the kubeconfig ${file}: ${(err as Error).message}`);
    }
    const simple = staticCredentials(parseYaml(text) as KubeConfigFile, dirname(file), source.context);
    if (simple !== undefined) return simple;
  }
  const { clientNodeCredentials } = await import('./client-node-credentials.ts');
  return clientNodeCredentials(source);
}

function kubeconfigFiles(source: KubeConfigSource): string[] {
  if (source.kubeconfig !== undefined) return [source.kubeconfig];
  const env = (process.env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (env.length > 0) return env;
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? [home] : [];
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

interface KubeConfigFile {
  'current-context'?: string;
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
}

const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'extensions',
]);
const USER_KEYS = new Set([
  'token',
  'tokenFile',
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'extensions',
]);

/**
 * Credentials of a kubeconfig's current (or given) context when they are static (a
 * token, a token file re-read when it changes, a client certificate; a CA); undefined
 * for anything else, which client-node then handles. Paths are relative to the
 * kubeconfig's directory.
 */
export function staticCredentials(
  doc: KubeConfigFile | null,
  dir: string,
  contextName = doc?.['current-context'],
): KubeConfigCredentials | undefined {
  const context = doc?.contexts?.find((c) => c.name === contextName)?.context;
  if (context === undefined && contextName !== undefined && contextName !== doc?.['current-context']) {
    const names = (doc?.contexts ?? []).map((c) => c.name);
    throw new KubeConfigError(
      `context "${contextName}" is not in the kubeconfig (contexts: ${names.join(', ') || 'none'})`,
    );
  }
  const cluster = doc?.clusters?.find((c) => c.name === context?.cluster)?.cluster;
  const user = doc?.users?.find((u) => u.name === context?.user)?.user ?? {};
  if (cluster === undefined || typeof cluster.server !== 'string') return undefined;
  if (Object.keys(cluster).some((k) => !CLUSTER_KEYS.has(k))) return undefined;
  if (Object.keys(user).some((k) => !USER_KEYS.has(k))) return undefined;
  const path = (p: unknown) => (isAbsolute(p as string) ? (p as string) : join(dir, p as string));
  const pem = (file: unknown, data: unknown): string | undefined => {
    if (typeof data === 'string') return Buffer.from(data, 'base64').toString('utf8');
    if (typeof file !== 'string') return undefined;
    try {
      return readFileSync(path(file), 'utf8');
    } catch (err) {
      throw new KubeConfigError(`kubeconfig: cannot read ${path(file)}: ${(err as Error).message}`);
    }
  };
  const ca = pem(cluster['certificate-authority'], cluster['certificate-authority-data']);
  const cert = pem(user['client-certificate'], user['client-certificate-data']);
  const key = pem(user['client-key'], user['client-key-data']);
  const token = tokenSource(user.token, user.tokenFile === undefined ? undefined : path(user.tokenFile));
  return {
    server: cluster.server.replace(/\/$/, ''),
    namespace: context?.namespace,
    tls: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(cluster['insecure-skip-tls-verify'] === true ? { rejectUnauthorized: false } : {}),
    },
    async headers() {
      const t = token();
      return t === undefined ? {} : { authorization: `Bearer ${t}` };
    },
  };
}

/** A fixed token, or a token file re-read when it changes (as client-go does for rotated tokens). */
function tokenSource(token: unknown, file: string | undefined): () => string | undefined {
  if (typeof token === 'string') return () => token;
  if (file === undefined) return () => undefined;
  let value = '';
  let mtime = -1;
  return () => {
    try {
      const m = statSync(file).mtimeMs;
      if (m !== mtime) {
        value = readFileSync(file, 'utf8').trim();
        mtime = m;
      }
    } catch (err) {
      throw new KubeConfigError(`kubeconfig: cannot read the token file ${file}: ${(err as Error).message}`);
    }
    return value;
  };
}
