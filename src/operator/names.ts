// Names only the operator and its generated install manifests use: one place,
// so the webhook, the RBAC the operator provisions, the admission policy and the
// operator's flag defaults cannot drift apart. What the sidecar must agree on
// too is in ../api/contract.ts.
import { GROUP } from '../api/origin.ts';

/** ClusterRole granting what a sidecar needs; bound per namespace by the operator. */
export const SIDECAR_CLUSTER_ROLE = 'originguard-sidecar';
/** RoleBinding the operator keeps in each namespace that has Origins. */
export const SIDECAR_ROLE_BINDING = 'originguard-sidecar';

/** Server-side-apply field manager of the operator's writes. */
export const OPERATOR_FIELD_MANAGER = 'originguard-operator';

/** Label on every object the operator creates, so it can list (and only touch) its own. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'originguard-operator';

/** Namespaces never injected, whatever the Origins say (plus the operator's own). */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;

/** Reporting controller of the Events the operator writes (events.k8s.io/v1). */
export const REPORTING_CONTROLLER = `${GROUP}/operator`;

/** Name of the one webhook in the MutatingWebhookConfiguration. */
export const POD_WEBHOOK = `pods.${GROUP}`;

/** Defaults of the operator's flags; the chart and the Roles name them (get/update restricted by name). */
export const DEFAULT_WEBHOOK_CONFIGURATION = 'originguard';
export const DEFAULT_WEBHOOK_SERVICE = 'originguard-webhook';
export const DEFAULT_WEBHOOK_CERT_SECRET = 'originguard-webhook-cert';
export const DEFAULT_LEASE = 'originguard-operator';
export const DEFAULT_NAMESPACE = 'originguard-system';
