// The operator's view of pods: only in namespaces that have Origins (one watch
// per such namespace, started with its first Origin and stopped with its last),
// and of each pod only what the operator decides on (slimPod). Memory then grows
// with the pods Origins could select, at a few hundred bytes each, instead of
// with every pod in the cluster at the 10–30 KB of a full object.
import { INJECT_ANNOTATION, INJECTED_ANNOTATION, SIDECAR_CONTAINER } from '../api/contract.ts';
import { type KubeClient, resourcePath } from '../kube/client.ts';
import { Informer, type InformerOptions, namespaceOfPath } from '../kube/informer.ts';
import type { ObjectMeta, OwnerReference, PodObject } from '../kube/objects.ts';

/** Annotations the operator reads on a pod (opted out; which version injected it). */
const KEPT_ANNOTATIONS = [INJECT_ANNOTATION, INJECTED_ANNOTATION];

/**
 * The pod as cached: identity, labels, the annotations above, its controller, service
 * account, node, whether and where the sidecar runs, phase and readiness. Everything
 * the status aggregation, the RBAC controller and the event routing read decides the
 * same on it as on the full pod (test/unit/pod-cache.test.ts).
 */
export function slimPod(pod: PodObject): PodObject {
  const m = pod.metadata;
  const metadata: ObjectMeta = { name: m.name };
  if (m.namespace !== undefined) metadata.namespace = m.namespace;
  if (m.uid !== undefined) metadata.uid = m.uid;
  if (m.resourceVersion !== undefined) metadata.resourceVersion = m.resourceVersion;
  if (m.labels !== undefined) metadata.labels = m.labels;
  if (m.deletionTimestamp !== undefined) metadata.deletionTimestamp = m.deletionTimestamp;
  const annotations = KEPT_ANNOTATIONS.filter((k) => m.annotations?.[k] !== undefined);
  if (annotations.length > 0) {
    metadata.annotations = Object.fromEntries(annotations.map((k) => [k, m.annotations?.[k] as string]));
  }
  const controller = m.ownerReferences?.find((o) => o.controller === true);
  if (controller !== undefined) {
    const owner: OwnerReference = { kind: controller.kind, name: controller.name, controller: true };
    metadata.ownerReferences = [owner];
  }
  const spec: NonNullable<PodObject['spec']> = {};
  const s = pod.spec;
  if (s?.serviceAccountName !== undefined) spec.serviceAccountName = s.serviceAccountName;
  if (s?.nodeName !== undefined) spec.nodeName = s.nodeName;
  const sidecar = { name: SIDECAR_CONTAINER };
  if (s?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER)) spec.initContainers = [sidecar];
  if (s?.containers?.some((c) => c.name === SIDECAR_CONTAINER)) spec.containers = [sidecar];
  const slim: PodObject = { metadata, spec };
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (pod.status?.phase !== undefined || ready !== undefined) {
    slim.status = {
      ...(pod.status?.phase === undefined ? {} : { phase: pod.status.phase }),
      ...(ready === undefined ? {} : { conditions: [{ type: 'Ready', status: ready.status }] }),
    };
  }
  return slim;
}

const podsPath = (namespace: string) => resourcePath({ group: '', version: 'v1', plural: 'pods', namespace });

export type PodCacheOptions = Omit<InformerOptions<PodObject>, 'paths' | 'transform' | 'name'>;

/** Pods of the namespaces it is told to follow, slimmed; `informer` carries the events. */
export class PodCache {
  readonly informer: Informer<PodObject>;

  constructor(client: KubeClient, opts: PodCacheOptions) {
    this.informer = new Informer<PodObject>(client, {
      // Pages of 100 full pods (about 1.5 MB parsed) die young: a relist neither blocks the event
      // loop for long nor leaves its garbage in the old generation; 4 in flight keep a restart quick.
      pageSize: 100,
      listConcurrency: 4,
      ...opts,
      name: 'pods',
      paths: [],
      transform: slimPod,
    });
  }

  /** Watches exactly these namespaces' pods from now on (the namespaces with Origins). */
  follow(namespaces: Iterable<string>): void {
    this.informer.setPaths([...new Set(namespaces)].sort().map(podsPath));
  }

  /** Whether the pods of `namespace` are watched and listed: only then may a controller decide on them. */
  synced(namespace: string): boolean {
    return this.informer.hasSynced(podsPath(namespace));
  }

  get namespaces(): string[] {
    return this.informer.watchedPaths.map((p) => namespaceOfPath(p) ?? '');
  }

  list(namespace: string): PodObject[] {
    return this.informer.list(namespace);
  }
}
