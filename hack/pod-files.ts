// The files and environment an injected sidecar finds in its pod (token, CA,
// downward-API labels, ORIGINGUARD_* variables), for running a cluster-mode
// sidecar as a process outside a kubelet: the benches and the tests.
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CA_FILE, LABELS_FILE, SIDECAR_ENV, TOKEN_FILE } from '../src/api/contract.ts';

export interface PodFiles {
  readonly podName: string;
  readonly namespace: string;
  readonly podUid: string;
  readonly serviceAccount: string;
  /** Holds `token`, `ca.crt` and `labels`, like the projected volume. */
  readonly dir: string;
}

/** Writes labels the way the kubelet renders metadata.labels: sorted `key="value"` lines. */
export async function writeLabels(dir: string, labels: Record<string, string>): Promise<void> {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join('\n');
  // Label values are plain ASCII, where JSON and Go quoting agree. Written aside and
  // renamed, as the kubelet's atomic writer swaps the files.
  await writeFile(join(dir, '.labels.tmp'), text);
  await rename(join(dir, '.labels.tmp'), join(dir, LABELS_FILE));
}

/** The environment the webhook gives the container (downward API and token paths). */
export function podEnv(pod: PodFiles, apiPort: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    [SIDECAR_ENV.podName]: pod.podName,
    [SIDECAR_ENV.podNamespace]: pod.namespace,
    [SIDECAR_ENV.podUid]: pod.podUid,
    [SIDECAR_ENV.serviceAccount]: pod.serviceAccount,
    [SIDECAR_ENV.tokenFile]: join(pod.dir, TOKEN_FILE),
    [SIDECAR_ENV.caFile]: join(pod.dir, CA_FILE),
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(apiPort),
  };
}
