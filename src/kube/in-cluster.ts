// Credentials of a pod: a projected service-account token file (the kubelet
// rotates it, so it is re-read when it changes) and the cluster CA, with the API
// server from KUBERNETES_SERVICE_HOST/PORT as every in-cluster client finds it.
// No @kubernetes/client-node here: the sidecar loads only undici, already loaded.
import { readFileSync, statSync } from 'node:fs';
import type { Credentials } from './client.ts';
import { KubeConfigError } from './errors.ts';

export interface InClusterOptions {
  tokenFile: string;
  caFile: string;
  /** Default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. */
  server?: string | undefined;
}

/** The API server address a pod sees; throws naming what is missing. */
export function inClusterServer(env: NodeJS.ProcessEnv = process.env): string {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (host === undefined || host === '') {
    throw new KubeConfigError(
      'KUBERNETES_SERVICE_HOST is not set: not running in a pod (or pass the API server address)',
    );
  }
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function inClusterCredentials(opts: InClusterOptions): Credentials {
  const server = opts.server ?? inClusterServer();
  let ca: string;
  try {
    ca = readFileSync(opts.caFile, 'utf8');
  } catch (err) {
    throw new KubeConfigError(`cannot read the cluster CA ${opts.caFile}: ${(err as Error).message}`);
  }
  let token = '';
  let tokenMtime = -1;
  const readToken = () => {
    // The kubelet replaces the file (atomic symlink swap) well before the token expires.
    const mtime = statSync(opts.tokenFile).mtimeMs;
    if (mtime !== tokenMtime) {
      token = readFileSync(opts.tokenFile, 'utf8').trim();
      tokenMtime = mtime;
    }
    return token;
  };
  readToken();
  return {
    server,
    tls: { ca },
    async headers() {
      return { authorization: `Bearer ${readToken()}` };
    },
  };
}
