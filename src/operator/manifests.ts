// The cluster objects an install needs, as pure builders: RBAC for the sidecar and
// the operator, the admission policy that pins a sidecar's token to its own pod's
// reports, and the injection webhook's configuration. hack/generate-manifests.ts
// writes the static ones to deploy/, the Helm chart renders the same objects, the
// operator applies the per-namespace RoleBinding, and the cluster tests apply them.
import { stringify } from 'yaml';
import { GROUP } from '../api/origin.ts';
import type { ObjectMeta } from '../kube/objects.ts';
import { InvalidManifestError } from './errors.ts';
import {
  DEFAULT_LEASE,
  DEFAULT_WEBHOOK_CERT_SECRET,
  DEFAULT_WEBHOOK_CONFIGURATION,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  POD_WEBHOOK,
  SIDECAR_CLUSTER_ROLE,
  SIDECAR_ROLE_BINDING,
} from './names.ts';

const RBAC = 'rbac.authorization.k8s.io';
const RBAC_V1 = `${RBAC}/v1`;
const ADMISSION_V1 = 'admissionregistration.k8s.io/v1';

/** ClusterRole of the operator. */
export const OPERATOR_CLUSTER_ROLE = 'originguard-operator';
/** Role of the operator in its own namespace (webhook certificate Secret, leader-election Lease). */
export const OPERATOR_ROLE = 'originguard-operator';
/** The ValidatingAdmissionPolicy (and its binding) that ties report writes to the token's pod. */
export const REPORT_POLICY = `originreports.${GROUP}`;
/** Labels of the objects the installer owns (the operator's own objects carry MANAGED_BY_LABEL). */
const INSTALL_LABELS = {
  'app.kubernetes.io/name': 'originguard',
  'app.kubernetes.io/part-of': 'originguard',
};

/** Installed objects always carry labels. */
type LabelledMeta = ObjectMeta & { labels: Record<string, string> };

export type PolicyRule = {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
};

export type RbacRole = {
  apiVersion: typeof RBAC_V1;
  kind: 'ClusterRole' | 'Role';
  metadata: LabelledMeta;
  rules: PolicyRule[];
};

export type RoleBinding = {
  apiVersion: typeof RBAC_V1;
  kind: 'RoleBinding';
  metadata: LabelledMeta & { namespace: string };
  roleRef: { apiGroup: typeof RBAC; kind: 'ClusterRole'; name: string };
  subjects: { kind: 'ServiceAccount'; name: string; namespace: string }[];
};

/** Any object these builders return, as written to YAML. */
export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: LabelledMeta;
  [key: string]: unknown;
};

const rule = (
  apiGroup: string,
  resources: string[],
  verbs: string[],
  resourceNames?: string[],
): PolicyRule => ({
  apiGroups: [apiGroup],
  resources,
  verbs,
  ...(resourceNames === undefined ? {} : { resourceNames }),
});

/**
 * What every sidecar may do, bound per namespace: read Origins (it watches its own)
 * and write OriginReports with server-side apply. Apply needs `patch`, plus `create`
 * when the report does not exist yet; `delete` removes the report of an Origin that
 * stops selecting the pod (the garbage collector deletes the rest with the pod).
 * No get, list or update. Which report is checked by the admission policy, not
 * here: RBAC cannot tell one pod's report from another's.
 */
export function sidecarClusterRole(): RbacRole {
  return {
    apiVersion: RBAC_V1,
    kind: 'ClusterRole',
    metadata: { name: SIDECAR_CLUSTER_ROLE, labels: INSTALL_LABELS },
    rules: [
      rule(GROUP, ['origins'], ['get', 'list', 'watch']),
      rule(GROUP, ['originreports'], ['create', 'patch', 'delete']),
    ],
  };
}

/** The RoleBinding the operator keeps in a namespace with Origins: the sidecar role for these ServiceAccounts. */
export function sidecarRoleBinding(namespace: string, serviceAccounts: readonly string[]): RoleBinding {
  return {
    apiVersion: RBAC_V1,
    kind: 'RoleBinding',
    metadata: { name: SIDECAR_ROLE_BINDING, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: SIDECAR_CLUSTER_ROLE },
    subjects: [...new Set(serviceAccounts)]
      .sort()
      .map((name) => ({ kind: 'ServiceAccount', name, namespace })),
  };
}

/**
 * The operator's cluster-wide rights, each for one reason: read Origins, reports and
 * pods (status aggregation), read one node or namespace by name (a failing pod's
 * zone, a namespace's opt-in to the operator's probe; metadata only, no list or
 * watch), write only Origin status, keep the sidecar RoleBindings,
 * record Events, and keep the webhook's caBundle. `bind` on the sidecar ClusterRole
 * lets it grant that role without holding the report-writing rights itself.
 * Restricted by name, list and watch of the webhook configuration are allowed only
 * with the field selector metadata.name=<name>.
 */
export function operatorClusterRole(webhookConfiguration = DEFAULT_WEBHOOK_CONFIGURATION): RbacRole {
  return {
    apiVersion: RBAC_V1,
    kind: 'ClusterRole',
    metadata: { name: OPERATOR_CLUSTER_ROLE, labels: INSTALL_LABELS },
    rules: [
      rule(GROUP, ['origins'], ['get', 'list', 'watch']),
      rule(GROUP, ['origins/status'], ['get', 'patch', 'update']),
      rule(GROUP, ['originreports'], ['get', 'list', 'watch']),
      rule('', ['pods'], ['get', 'list', 'watch']),
      rule('', ['nodes', 'namespaces'], ['get']),
      rule(RBAC, ['rolebindings'], ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']),
      rule(RBAC, ['clusterroles'], ['bind'], [SIDECAR_CLUSTER_ROLE]),
      rule('events.k8s.io', ['events'], ['create', 'patch']),
      rule(
        'admissionregistration.k8s.io',
        ['mutatingwebhookconfigurations'],
        ['get', 'list', 'watch', 'patch', 'update'],
        [webhookConfiguration],
      ),
    ],
  };
}

/**
 * The operator's rights in its own namespace: the webhook certificate Secret and the
 * leader-election Lease, by name; `create` cannot be restricted by name (the name is
 * not known when the request is authorized).
 */
export function operatorNamespaceRole(
  namespace: string,
  names: { secret?: string; lease?: string } = {},
): RbacRole & { metadata: { namespace: string } } {
  return {
    apiVersion: RBAC_V1,
    kind: 'Role',
    metadata: { name: OPERATOR_ROLE, namespace, labels: INSTALL_LABELS },
    rules: [
      rule('', ['secrets'], ['get', 'update'], [names.secret ?? DEFAULT_WEBHOOK_CERT_SECRET]),
      rule('', ['secrets'], ['create']),
      rule('coordination.k8s.io', ['leases'], ['get', 'update'], [names.lease ?? DEFAULT_LEASE]),
      rule('coordination.k8s.io', ['leases'], ['create']),
    ],
  };
}

/** Binds the operator's ClusterRole and namespace Role to its ServiceAccount. */
export function operatorBindings(
  namespace: string,
  serviceAccount: string,
  clusterRole: string = OPERATOR_CLUSTER_ROLE,
): Manifest[] {
  const subjects = [{ kind: 'ServiceAccount', name: serviceAccount, namespace }];
  return [
    {
      apiVersion: RBAC_V1,
      kind: 'ClusterRoleBinding',
      metadata: { name: clusterRole, labels: INSTALL_LABELS },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: clusterRole },
      subjects,
    },
    {
      apiVersion: RBAC_V1,
      kind: 'RoleBinding',
      metadata: { name: OPERATOR_ROLE, namespace, labels: INSTALL_LABELS },
      roleRef: { apiGroup: RBAC, kind: 'Role', name: OPERATOR_ROLE },
      subjects,
    },
  ];
}

/** Extras the API server puts in the user info of a pod-bound service-account token. */
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** Added when the pod is scheduled (Kubernetes 1.30+, ServiceAccountTokenPodNodeInfo). */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

// CEL, in the style of the upstream DRA e2e driver's plugin-permissions.yaml. Extras
// are lists; a token bound to no pod has none. DELETE has only oldObject.
const CEL_VARIABLES = [
  { name: 'podName', expression: `request.userInfo.extra[?'${POD_NAME_EXTRA}'][0].orValue('')` },
  { name: 'podUID', expression: `request.userInfo.extra[?'${POD_UID_EXTRA}'][0].orValue('')` },
  { name: 'podBound', expression: "variables.podName != '' && variables.podUID != ''" },
  { name: 'tokenNode', expression: `request.userInfo.extra[?'${NODE_NAME_EXTRA}'][0].orValue('')` },
  { name: 'report', expression: "request.operation == 'DELETE' ? oldObject : object" },
  {
    name: 'expectedName',
    expression:
      "variables.report.status.originName.replace('-', '--') + '-' + variables.report.status.podName.replace('-', '--')",
  },
  {
    name: 'podOwners',
    expression:
      "has(variables.report.metadata.ownerReferences) ? variables.report.metadata.ownerReferences.filter(r, r.kind == 'Pod') : []",
  },
];

// Messages are double-quoted CEL strings, so they may contain apostrophes.
const TOKEN_POD = 'variables.podName + " (uid " + variables.podUID + ")"';
const REPORT_POD = (o: string) => `${o}.status.podName + " (uid " + ${o}.status.podUID + ")"`;

/**
 * Every check answers with what is wrong and what was expected. All but the first
 * hold trivially for a token bound to no pod, so that one's message is the answer.
 */
const VALIDATIONS = [
  {
    expression: 'variables.podBound',
    messageExpression: `"OriginReports may only be written with a pod-bound service-account token (the sidecar's projected token); " + request.userInfo.username + " used a token bound to no pod"`,
    reason: 'Forbidden',
  },
  {
    expression:
      '!variables.podBound || (variables.report.status.podName == variables.podName && variables.report.status.podUID == variables.podUID)',
    messageExpression: `"this report is about pod " + ${REPORT_POD('variables.report')} + ", not the token's pod " + ${TOKEN_POD} + ": a sidecar writes only its own pod's reports (status.podName, status.podUID)"`,
    reason: 'Forbidden',
  },
  {
    expression:
      "!variables.podBound || request.operation != 'UPDATE' || (oldObject.status.podName == variables.podName && oldObject.status.podUID == variables.podUID)",
    messageExpression: `"this report belongs to pod " + ${REPORT_POD('oldObject')} + ", not the token's pod " + ${TOKEN_POD} + ": a sidecar may not take over another pod's report"`,
    reason: 'Forbidden',
  },
  {
    expression:
      '!variables.podBound || (size(variables.podOwners) > 0 && variables.podOwners.all(r, r.uid == variables.podUID))',
    messageExpression: `"metadata.ownerReferences must name the token's pod " + ${TOKEN_POD} + " and no other Pod, so that the report is deleted with it; got Pod owners [" + variables.podOwners.map(r, r.name + " (uid " + r.uid + ")").join(", ") + "]"`,
    reason: 'Forbidden',
  },
  {
    // Failures are grouped by node: a report may not claim another node than its token's.
    expression:
      "!variables.podBound || request.operation == 'DELETE' || variables.tokenNode == '' || !has(object.status.nodeName) || object.status.nodeName == variables.tokenNode",
    messageExpression: `"status.nodeName must be the node of the token's pod, " + variables.tokenNode + ", got " + object.status.nodeName`,
    reason: 'Forbidden',
  },
  {
    // A report under another pod's name would block that pod's own report. Names longer
    // than 253 characters end in a hash (reportName()) that CEL cannot compute.
    expression:
      "!variables.podBound || request.operation == 'DELETE' || size(variables.expectedName) > 253 || object.metadata.name == variables.expectedName",
    messageExpression: `"metadata.name must be " + variables.expectedName + " (status.originName and status.podName joined by '-', each '-' doubled), got " + object.metadata.name`,
    reason: 'Invalid',
  },
];

/**
 * The NodeRestriction of reports: a sidecar's pod-bound token may write only its own
 * pod's reports. Applies to service accounts only (people and controllers use other
 * credentials), and not to kube-system's, whose garbage collector and namespace
 * controller delete reports. Fails closed: a report written past it would lie about a pod.
 */
export function reportAdmissionPolicy(): Manifest {
  return {
    apiVersion: ADMISSION_V1,
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: REPORT_POLICY, labels: INSTALL_LABELS },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: [GROUP],
            apiVersions: ['*'],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            resources: ['originreports'],
          },
        ],
      },
      matchConditions: [
        {
          name: 'service-account',
          expression: "request.userInfo.username.startsWith('system:serviceaccount:')",
        },
        {
          name: 'not-kube-system',
          expression: "!request.userInfo.username.startsWith('system:serviceaccount:kube-system:')",
        },
      ],
      variables: CEL_VARIABLES,
      validations: VALIDATIONS,
    },
  };
}

/** Binds the policy cluster-wide; Deny refuses the request (no audit-only or warn mode). */
export function reportAdmissionPolicyBinding(): Manifest {
  return {
    apiVersion: ADMISSION_V1,
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: REPORT_POLICY, labels: INSTALL_LABELS },
    spec: { policyName: REPORT_POLICY, validationActions: ['Deny'] },
  };
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface WebhookConfigurationOptions {
  name: string;
  /** How the API server reaches the webhook: a URL (tests, out-of-cluster) or a Service. */
  clientConfig:
    | { url: string }
    | { service: { name: string; namespace: string; path: string; port: number } };
  /** Base64 PEM of the CA; the operator keeps it in sync, so it may be left out at install. */
  caBundle?: string;
  /** Namespaces never injected (kube-system & co. and the operator's own). */
  excludedNamespaces: readonly string[];
  failurePolicy?: 'Ignore' | 'Fail';
  timeoutSeconds?: number;
  extraNamespaceSelector?: {
    matchLabels?: Record<string, string>;
    matchExpressions?: LabelSelectorRequirement[];
  };
}

/**
 * The injection webhook: pods on CREATE only. Fails open by default (an operator
 * outage must not stop pod creation; status counts the pods it missed), and is
 * called again if a later webhook adds containers, so injection sees the final pod.
 */
export function mutatingWebhookConfiguration(o: WebhookConfigurationOptions): Manifest {
  const timeoutSeconds = o.timeoutSeconds ?? 5;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30) {
    throw new InvalidManifestError(`timeoutSeconds: must be an integer from 1 to 30, got ${timeoutSeconds}`);
  }
  const excluded = [...new Set(o.excludedNamespaces)].sort();
  return {
    apiVersion: ADMISSION_V1,
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: o.name, labels: INSTALL_LABELS },
    webhooks: [
      {
        name: POD_WEBHOOK,
        clientConfig: { ...o.clientConfig, ...(o.caBundle === undefined ? {} : { caBundle: o.caBundle }) },
        rules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        failurePolicy: o.failurePolicy ?? 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds,
        reinvocationPolicy: 'IfNeeded',
        namespaceSelector: {
          ...(o.extraNamespaceSelector?.matchLabels
            ? { matchLabels: o.extraNamespaceSelector.matchLabels }
            : {}),
          matchExpressions: [
            ...(excluded.length > 0
              ? [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded }]
              : []),
            ...(o.extraNamespaceSelector?.matchExpressions ?? []),
          ],
        },
      },
    ],
  };
}

/** The static install objects kept in deploy/ (the webhook configuration depends on the install, so the chart renders it). */
export function manifestFiles(): { file: string; objects: Manifest[] }[] {
  return [
    { file: 'rbac.yaml', objects: [sidecarClusterRole(), operatorClusterRole()] },
    { file: 'admission-policy.yaml', objects: [reportAdmissionPolicy(), reportAdmissionPolicyBinding()] },
  ];
}

/** The YAML text of a deploy/ file. */
export function renderManifests(objects: readonly Manifest[]): string {
  const header = '# Generated from src/operator/manifests.ts by `npm run generate:manifests`; do not edit.\n';
  return header + objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}
