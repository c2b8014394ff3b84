// Reading Origins and their OriginReports for `diagnose origin/NAME` and
// `status`, with the user's kubeconfig (--kubeconfig, --context, -n as kubectl
// takes them) through the thin client. Only get and list: the RBAC a user needs
// is read access to origins and originreports (docs/diagnose.md). Every API
// failure becomes one message that says what to do.
import { GROUP, VERSION } from '../api/origin.ts';
import { labelValue, ORIGIN_LABEL, type OriginReport } from '../api/report.ts';
import { KubeClient, resourcePath } from '../kube/client.ts';
import { KubeApiError } from '../kube/errors.ts';
import { loadKubeConfig } from '../kube/kubeconfig.ts';
import { OriginUnavailableError } from './errors.ts';
import type { OriginObject } from './status-view.ts';

export interface ClusterFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly namespace?: string | undefined;
}

export interface ClusterSession {
  readonly client: KubeClient;
  /** -n, else the context's namespace, else default (as kubectl). */
  readonly namespace: string;
  readonly server: string;
}

export async function openCluster(flags: ClusterFlags): Promise<ClusterSession> {
  try {
    const creds = await loadKubeConfig({ kubeconfig: flags.kubeconfig, context: flags.context });
    return {
      client: new KubeClient(creds, 15_000),
      namespace: flags.namespace ?? creds.namespace ?? 'default',
      server: creds.server,
    };
  } catch (err) {
    throw new OriginUnavailableError(`cannot use the kubeconfig: ${(err as Error).message}`);
  }
}

const path = (plural: string, namespace?: string, name?: string) =>
  resourcePath({ group: GROUP, version: VERSION, plural, namespace, name });

/** One message per API failure, naming what to check. */
function unavailable(err: unknown, what: string, session: ClusterSession): OriginUnavailableError {
  if (!(err instanceof KubeApiError)) return new OriginUnavailableError(`${what}: ${(err as Error).message}`);
  if (err.status === 0)
    return new OriginUnavailableError(
      `${what}: cannot reach the API server ${session.server}: ${err.message}`,
    );
  if (err.status === 401)
    return new OriginUnavailableError(
      `${what}: the API server does not accept these credentials (401): log in again`,
    );
  if (err.status === 403) {
    return new OriginUnavailableError(
      `${what}: forbidden (403): your identity needs get and list on origins and originreports.${GROUP} (see docs/diagnose.md, "RBAC")`,
    );
  }
  if (err.status === 404 && /could not find the requested resource/i.test(err.message)) {
    return new OriginUnavailableError(
      `${what}: the Origin CRD is not installed in this cluster (kubectl apply -f crds/, or helm install)`,
    );
  }
  return new OriginUnavailableError(`${what}: ${err.message}`);
}

export async function getOrigin(
  session: ClusterSession,
  namespace: string,
  name: string,
): Promise<OriginObject> {
  const what = `reading Origin ${namespace}/${name}`;
  let origin: OriginObject | undefined;
  try {
    origin = await session.client.get<OriginObject>(path('origins', namespace, name));
  } catch (err) {
    throw unavailable(err, what, session);
  }
  if (origin === undefined) {
    throw new OriginUnavailableError(
      `Origin ${namespace}/${name} not found (kubectl get origins -n ${namespace})`,
    );
  }
  return origin;
}

/** Origins of a namespace, or of all namespaces when `namespace` is undefined. */
export async function listOrigins(
  session: ClusterSession,
  namespace: string | undefined,
): Promise<OriginObject[]> {
  try {
    return (await session.client.list<OriginObject>(path('origins', namespace))).items;
  } catch (err) {
    throw unavailable(err, `listing Origins${namespace === undefined ? '' : ` in ${namespace}`}`, session);
  }
}

/** Reports of one Origin (by its label), or of every Origin; of a namespace or of all. */
export async function listReports(
  session: ClusterSession,
  namespace: string | undefined,
  originName?: string,
): Promise<OriginReport[]> {
  const query = {
    labelSelector: originName === undefined ? ORIGIN_LABEL : `${ORIGIN_LABEL}=${labelValue(originName)}`,
  };
  try {
    const items = (await session.client.list<OriginReport>(path('originreports', namespace), query)).items;
    // A label value is shortened past 63 characters: the report's own field says which Origin.
    return originName === undefined ? items : items.filter((r) => r.status.originName === originName);
  } catch (err) {
    throw unavailable(
      err,
      `listing OriginReports${namespace === undefined ? '' : ` in ${namespace}`}`,
      session,
    );
  }
}
