// Credentials from a kubeconfig (or the in-cluster service account) through
// @kubernetes/client-node, which knows every auth method kubeconfigs use (tokens,
// client certificates, exec plugins, OIDC). The operator uses it; the sidecar
// must not (it costs tens of MB and hundreds of ms to load).

import type https from 'node:https';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import type { Credentials } from './client.ts';
import { KubeConfigError } from './errors.ts';

export interface KubeConfigSource {
  /** Path of a kubeconfig; else KUBECONFIG, ~/.kube/config or the in-cluster service account. */
  kubeconfig?: string | undefined;
  /** Context to use instead of the kubeconfig's current one (kubectl's --context). */
  context?: string | undefined;
}

export type KubeConfigCredentials = Credentials & {
  kubeConfig: KubeConfig;
  /** The namespace the context names, as kubectl defaults to it. */
  namespace: string | undefined;
};

export async function loadKubeConfig(source: KubeConfigSource = {}): Promise<KubeConfigCredentials> {
  const kc = new KubeConfig();
  if (source.kubeconfig !== undefined) kc.loadFromFile(source.kubeconfig);
  else kc.loadFromDefault();
  if (source.context !== undefined) {
    if (kc.getContextObject(source.context) === null) {
      throw new KubeConfigError(
        `context "${source.context}" is not in the kubeconfig (contexts: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        })`,
      );
    }
    kc.setCurrentContext(source.context);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) {
    throw new KubeConfigError(
      'no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a pod',
    );
  }
  const server = cluster.server.replace(/\/$/, '');
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const { ca, cert, key, rejectUnauthorized } = opts;
  return {
    server,
    kubeConfig: kc,
    namespace: kc.getContextObject(kc.getCurrentContext())?.namespace,
    tls: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
    },
    // Per request: exec plugins and OIDC refresh their tokens.
    async headers() {
      const ctx = new RequestContext(`${server}/`, HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      return ctx.getHeaders();
    },
  };
}
