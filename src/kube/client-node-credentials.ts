// Credentials from a kubeconfig through @kubernetes/client-node, which knows every
// auth method kubeconfigs use (exec plugins, OIDC and other auth providers, merged
// KUBECONFIG lists). Loaded only for those (kubeconfig.ts): it costs tens of MB of
// memory and hundreds of ms, which the in-cluster operator and the sidecar never pay.

import type https from 'node:https';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import type { Credentials } from './client.ts';
import { KubeConfigError } from './errors.ts';

/**
 * `kubeconfig`: a file; else KUBECONFIG (a list, merged), ~/.kube/config or the
 * in-cluster service account. `context`: instead of the current one.
 */
export async function clientNodeCredentials(source: {
  kubeconfig?: string | undefined;
  context?: string | undefined;
}): Promise<Credentials & { namespace: string | undefined }> {
  const kc = new KubeConfig();
  if (source.kubeconfig !== undefined) kc.loadFromFile(source.kubeconfig);
  else kc.loadFromDefault();
  if (source.context !== undefined) {
    if (kc.getContextObject(source.context) === null) {
      const contexts = kc.getContexts().map((c) => c.name);
      throw new KubeConfigError(
        `context "${source.context}" is not in the kubeconfig (contexts: ${contexts.join(', ') || 'none'})`,
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
