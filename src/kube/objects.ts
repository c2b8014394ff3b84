// The shapes of the Kubernetes objects this program reads and writes, typed as
// far as it uses them (the rest of an object passes through untouched), and the
// few formats of the API's conventions (object keys, JSON Patch).

export interface OwnerReference {
  apiVersion?: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

/** Any Kubernetes object: what the controllers need to key, compare and route it. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/** Cache key of an object: namespace/name, or name for cluster-scoped objects. */
export const objectKey = (o: KubeObject) =>
  o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`;

interface Named {
  readonly name: string;
}

/**
 * A core/v1 Pod as far as the operator reads it. Metadata may lack a name: a pod
 * in an admission request may only have generateName yet.
 */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: Partial<ObjectMeta>;
  spec?: {
    serviceAccountName?: string;
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: readonly Named[];
    initContainers?: readonly Named[];
    volumes?: readonly Named[];
  };
  status?: { phase?: string; conditions?: readonly PodCondition[] };
}

export interface PodCondition {
  type: string;
  status: string;
}

/** A Pod as the API server stores it (what an informer caches): named. */
export type PodObject = Pod & KubeObject;

/** An RFC 6902 JSON Patch operation (admission responses, JSON patches to the API). */
export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

/** JSON Pointer escaping (RFC 6901): annotation keys contain "/". */
export function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}
