// Keeps, in each namespace that has Origins, the RoleBinding that lets the
// sidecars of the selected pods read Origins and write their own OriginReports
// (the admission policy narrows that to their own pod). Subjects are the service
// accounts those pods run as, not every account of the namespace; the binding is
// deleted when the namespace's last Origin goes.
import type { Logger } from 'pino';
import { selects } from '../api/selector.ts';
import { type KubeClient, resourcePath } from '../kube/client.ts';
import type { Informer } from '../kube/informer.ts';
import { sidecarRoleBinding } from './manifests.ts';
import { OPERATOR_FIELD_MANAGER, SIDECAR_ROLE_BINDING } from './names.ts';
import type { PodCache } from './pod-cache.ts';
import type { Origin, Pod, RoleBinding } from './resources.ts';

export interface RbacControllerDeps {
  client: KubeClient;
  origins: Informer<Origin>;
  pods: Pick<PodCache, 'list' | 'synced'>;
  bindings: Informer<RoleBinding>;
  logger: Logger;
}

/** Service accounts of the pods any of `origins` selects (pure). */
export function sidecarServiceAccounts(origins: readonly Origin[], pods: readonly Pod[]): string[] {
  const accounts = new Set<string>();
  for (const pod of pods) {
    if (origins.some((o) => selects(o.spec.selector, pod.metadata.labels))) {
      accounts.add(pod.spec?.serviceAccountName ?? 'default');
    }
  }
  return [...accounts].sort();
}

const subjectsKey = (b: RoleBinding | undefined) =>
  JSON.stringify((b?.subjects ?? []).map((s) => `${s.kind}/${s.namespace ?? ''}/${s.name}`).sort());

export class RbacController {
  private readonly deps: RbacControllerDeps;

  constructor(deps: RbacControllerDeps) {
    this.deps = deps;
  }

  async reconcile(namespace: string): Promise<void> {
    const { client, origins, pods, bindings, logger } = this.deps;
    const path = resourcePath({
      group: 'rbac.authorization.k8s.io',
      version: 'v1',
      plural: 'rolebindings',
      namespace,
      name: SIDECAR_ROLE_BINDING,
    });
    const existing = bindings.get(`${namespace}/${SIDECAR_ROLE_BINDING}`);
    const nsOrigins = origins.list(namespace);
    if (nsOrigins.length === 0) {
      if (existing === undefined) return;
      await client.delete(path);
      logger.info({ namespace }, 'no Origins left: removed the sidecar RoleBinding');
      return;
    }
    // Subjects from an unlisted namespace would drop every sidecar's rights: wait for its pods.
    if (!pods.synced(namespace)) return;
    const desired = sidecarRoleBinding(namespace, sidecarServiceAccounts(nsOrigins, pods.list(namespace)));
    if (existing !== undefined && subjectsKey(existing) === subjectsKey(desired as RoleBinding)) return;
    await client.apply(path, desired, OPERATOR_FIELD_MANAGER);
    logger.info(
      { namespace, subjects: (desired as RoleBinding).subjects?.map((s) => s.name) },
      'sidecar RoleBinding applied',
    );
  }
}
