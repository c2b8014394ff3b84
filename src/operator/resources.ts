// The objects the operator's informers cache, typed as far as its controllers
// and its webhook read them.
import type { OriginManifest } from '../api/origin.ts';
import type { OriginReport } from '../api/report.ts';
import type { OriginStatus } from '../api/status.ts';
import type { KubeObject, ObjectMeta } from '../kube/objects.ts';
import type { RoleBinding as RoleBindingManifest } from './manifests.ts';

export type { PodObject as Pod } from '../kube/objects.ts';

export type Origin = Omit<OriginManifest, 'metadata'> & { metadata: ObjectMeta; status?: OriginStatus };
export type Report = OriginReport & KubeObject;
/** The sidecar RoleBinding the operator keeps per namespace, as read back. */
export type RoleBinding = KubeObject & Partial<Pick<RoleBindingManifest, 'subjects' | 'roleRef'>>;
