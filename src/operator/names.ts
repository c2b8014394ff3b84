// Names shared by the operator, the injected sidecar, the generated install
// manifests and the tests: one place, so the webhook, the RBAC the operator
// provisions and the admission policy cannot drift apart.
import { GROUP } from '../api/origin.ts';

/** Name of the injected container, in `initContainers` (native sidecar) or `containers`. */
export const SIDECAR_CONTAINER = 'originguard-sidecar';

/** Pod annotation: "false" opts the pod out of injection. */
export const INJECT_ANNOTATION = `${GROUP}/inject`;
/** Pod annotation the webhook sets: the operator version that injected the sidecar. */
export const INJECTED_ANNOTATION = `${GROUP}/injected`;

/** Projected volume holding the sidecar's own pod-bound service-account token. */
export const TOKEN_VOLUME = 'originguard-token';
/** Where the sidecar container (and only it) mounts that volume. */
export const TOKEN_MOUNT_PATH = '/var/run/secrets/originguard.dev/serviceaccount';

/** ClusterRole granting what a sidecar needs; bound per namespace by the operator. */
export const SIDECAR_CLUSTER_ROLE = 'originguard-sidecar';
/** RoleBinding the operator keeps in each namespace that has Origins. */
export const SIDECAR_ROLE_BINDING = 'originguard-sidecar';

/** Server-side-apply field managers: one per writer. */
export const OPERATOR_FIELD_MANAGER = 'originguard-operator';
export const SIDECAR_FIELD_MANAGER = 'originguard-sidecar';

/** Label on every object the operator creates, so it can list (and only touch) its own. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'originguard-operator';

/** Namespaces never injected, whatever the Origins say (plus the operator's own). */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;

/** Reporting controller of the Events the operator writes (events.k8s.io/v1). */
export const REPORTING_CONTROLLER = `${GROUP}/operator`;

/** Environment the injected sidecar reads its identity from (downward API). */
export const SIDECAR_ENV = {
  podName: 'ORIGINGUARD_POD_NAME',
  podNamespace: 'ORIGINGUARD_POD_NAMESPACE',
  podUid: 'ORIGINGUARD_POD_UID',
  serviceAccount: 'ORIGINGUARD_SERVICE_ACCOUNT',
  tokenFile: 'ORIGINGUARD_TOKEN_FILE',
  caFile: 'ORIGINGUARD_CA_FILE',
} as const;
