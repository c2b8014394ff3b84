import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  type Manifest,
  manifestFiles,
  mutatingWebhookConfiguration,
  OPERATOR_CLUSTER_ROLE,
  operatorClusterRole,
  operatorNamespaceRole,
  POD_NAME_EXTRA,
  POD_UID_EXTRA,
  type PolicyRule,
  REPORT_POLICY,
  renderManifests,
  reportAdmissionPolicy,
  reportAdmissionPolicyBinding,
  sidecarClusterRole,
  sidecarRoleBinding,
  type WebhookConfigurationOptions,
} from '../../src/operator/manifests.ts';
import {
  MANAGED_BY,
  MANAGED_BY_LABEL,
  POD_WEBHOOK,
  SIDECAR_CLUSTER_ROLE,
  SIDECAR_ROLE_BINDING,
  SYSTEM_NAMESPACES,
} from '../../src/operator/names.ts';

const deployDir = new URL('../../deploy/', import.meta.url);

/** Rules as "group/resource: verbs [names]" lines, for whole-role comparisons. */
const lines = (rules: PolicyRule[]) =>
  rules.map(
    (r) =>
      `${r.apiGroups.join(',') || 'core'}/${r.resources.join(',')}: ${r.verbs.join(',')}${r.resourceNames ? ` [${r.resourceNames.join(',')}]` : ''}`,
  );

describe('generated deploy/ manifests', () => {
  it.each(manifestFiles())(
    'deploy/$file is up to date with src/operator/manifests.ts (else run npm run generate:manifests)',
    ({ file, objects }) => {
      const onDisk = readFileSync(new URL(file, deployDir), 'utf8');
      expect(onDisk, `deploy/${file} is stale: run npm run generate:manifests`).toBe(
        renderManifests(objects),
      );
      const parsed = parseAllDocuments(onDisk).map((d) => d.toJS());
      expect(parsed).toEqual(JSON.parse(JSON.stringify(objects)));
      expect(onDisk.startsWith('# Generated from src/operator/manifests.ts')).toBe(true);
    },
  );
});

describe('sidecar RBAC', () => {
  it('lets a sidecar read Origins, write reports (server-side apply) and delete them, nothing more', () => {
    const role = sidecarClusterRole();
    expect(role.metadata.name).toBe(SIDECAR_CLUSTER_ROLE);
    expect(lines(role.rules)).toEqual([
      'edge.originguard.dev/origins: get,list,watch',
      'edge.originguard.dev/originreports: create,patch,delete',
    ]);
  });

  it('binds the role to the given ServiceAccounts of the namespace, sorted and unique, labelled as the operator’s', () => {
    expect(sidecarRoleBinding('web', ['shop', 'default', 'shop'])).toEqual({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: SIDECAR_ROLE_BINDING, namespace: 'web', labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: SIDECAR_CLUSTER_ROLE },
      subjects: [
        { kind: 'ServiceAccount', name: 'default', namespace: 'web' },
        { kind: 'ServiceAccount', name: 'shop', namespace: 'web' },
      ],
    });
  });
});

describe('operator RBAC', () => {
  it('grants each right the operator needs, by name where Kubernetes allows it', () => {
    const role = operatorClusterRole();
    expect(role.metadata.name).toBe(OPERATOR_CLUSTER_ROLE);
    expect(lines(role.rules)).toEqual([
      'edge.originguard.dev/origins: get,list,watch',
      'edge.originguard.dev/origins/status: get,patch,update',
      'edge.originguard.dev/originreports: get,list,watch',
      'core/pods: get,list,watch',
      'core/nodes,namespaces: get',
      'rbac.authorization.k8s.io/rolebindings: get,list,watch,create,update,patch,delete',
      `rbac.authorization.k8s.io/clusterroles: bind [${SIDECAR_CLUSTER_ROLE}]`,
      'events.k8s.io/events: create,patch',
      'admissionregistration.k8s.io/mutatingwebhookconfigurations: get,list,watch,patch,update [originguard]',
    ]);
    expect(lines(operatorClusterRole('og-webhook').rules).at(-1)).toContain('[og-webhook]');
  });

  it('never uses wildcards, and cannot write reports or Origin specs', () => {
    for (const role of [sidecarClusterRole(), operatorClusterRole()]) {
      for (const r of role.rules) {
        expect([...r.verbs, ...r.resources, ...r.apiGroups]).not.toContain('*');
        expect(r.verbs).not.toContain('escalate');
        expect(r.verbs).not.toContain('impersonate');
      }
    }
    const writes = operatorClusterRole().rules.filter((r) =>
      r.verbs.some((v) => ['create', 'patch', 'update'].includes(v)),
    );
    expect(writes.flatMap((r) => r.resources)).not.toContain('originreports');
    expect(writes.flatMap((r) => r.resources)).not.toContain('origins');
  });

  it('keeps the Secret and the Lease in the operator namespace, get and update by name', () => {
    const role = operatorNamespaceRole('originguard-system', { secret: 'cert', lease: 'leader' });
    expect(role).toMatchObject({ kind: 'Role', metadata: { namespace: 'originguard-system' } });
    expect(lines(role.rules)).toEqual([
      'core/secrets: get,update [cert]',
      'core/secrets: create',
      'coordination.k8s.io/leases: get,update [leader]',
      'coordination.k8s.io/leases: create',
    ]);
  });
});

describe('report admission policy', () => {
  // biome-ignore lint/suspicious/noExplicitAny: the policy spec is read as plain JSON
  const spec = reportAdmissionPolicy().spec as any;

  it('fails closed on every write of a report by a service account outside kube-system', () => {
    expect(spec.failurePolicy).toBe('Fail');
    expect(spec.matchConstraints.resourceRules).toEqual([
      expect.objectContaining({
        apiGroups: ['edge.originguard.dev'],
        operations: ['CREATE', 'UPDATE', 'DELETE'],
        resources: ['originreports'],
      }),
    ]);
    const conditions = spec.matchConditions.map((c: { expression: string }) => c.expression).join(' && ');
    expect(conditions).toContain("request.userInfo.username.startsWith('system:serviceaccount:')");
    expect(conditions).toContain(
      "!request.userInfo.username.startsWith('system:serviceaccount:kube-system:')",
    );
  });

  it("reads the token's pod from the user extras, the upstream DRA way, and the old object on DELETE", () => {
    const variables = Object.fromEntries(
      spec.variables.map((v: { name: string; expression: string }) => [v.name, v.expression]),
    );
    expect(variables.podName).toBe(`request.userInfo.extra[?'${POD_NAME_EXTRA}'][0].orValue('')`);
    expect(variables.podUID).toBe(`request.userInfo.extra[?'${POD_UID_EXTRA}'][0].orValue('')`);
    expect(variables.report).toBe("request.operation == 'DELETE' ? oldObject : object");
  });

  it('says what is wrong and what was expected in every refusal', () => {
    const messages = spec.validations
      .map((v: { messageExpression: string }) => v.messageExpression)
      .join('\n');
    expect(spec.validations.every((v: { messageExpression?: string }) => v.messageExpression)).toBe(true);
    expect(messages).toContain(
      "OriginReports may only be written with a pod-bound service-account token (the sidecar's projected token)",
    );
    expect(messages).toContain("not the token's pod");
    expect(messages).toContain('metadata.ownerReferences must name the token');
    expect(messages).toContain('metadata.name must be');
  });

  it('is bound cluster-wide to deny', () => {
    expect(reportAdmissionPolicyBinding()).toMatchObject({
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: REPORT_POLICY },
      spec: { policyName: REPORT_POLICY, validationActions: ['Deny'] },
    });
  });
});

describe('mutatingWebhookConfiguration', () => {
  const base: WebhookConfigurationOptions = {
    name: 'originguard',
    clientConfig: {
      service: { name: 'originguard-webhook', namespace: 'og', path: '/mutate-pods', port: 443 },
    },
    excludedNamespaces: [...SYSTEM_NAMESPACES, 'og', 'kube-system'],
  };
  // biome-ignore lint/suspicious/noExplicitAny: the webhook is read as plain JSON
  const webhookOf = (m: Manifest) => (m.webhooks as any[])[0];

  it('injects on pod CREATE only, fails open, and is called again after other webhooks', () => {
    const config = mutatingWebhookConfiguration(base);
    expect(config.webhooks).toHaveLength(1);
    expect(webhookOf(config)).toMatchObject({
      name: POD_WEBHOOK,
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
      failurePolicy: 'Ignore',
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      timeoutSeconds: 5,
      reinvocationPolicy: 'IfNeeded',
    });
    expect(webhookOf(config)).not.toHaveProperty('objectSelector');
    expect(webhookOf(config).clientConfig).toEqual(base.clientConfig);
  });

  it('never selects the excluded namespaces (sorted, unique), plus any extra selector', () => {
    const config = mutatingWebhookConfiguration({
      ...base,
      extraNamespaceSelector: {
        matchLabels: { team: 'edge' },
        matchExpressions: [{ key: 'originguard', operator: 'NotIn', values: ['disabled'] }],
      },
    });
    expect(webhookOf(config).namespaceSelector).toEqual({
      matchLabels: { team: 'edge' },
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-node-lease', 'kube-public', 'kube-system', 'og'],
        },
        { key: 'originguard', operator: 'NotIn', values: ['disabled'] },
      ],
    });
  });

  it('takes a URL, a caBundle, a failure policy and a timeout, and refuses a timeout the API server would', () => {
    const config = mutatingWebhookConfiguration({
      ...base,
      clientConfig: { url: 'https://127.0.0.1:9443/mutate-pods' },
      caBundle: 'Q0E=',
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
    });
    expect(webhookOf(config)).toMatchObject({
      clientConfig: { url: 'https://127.0.0.1:9443/mutate-pods', caBundle: 'Q0E=' },
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
    });
    expect(() => mutatingWebhookConfiguration({ ...base, timeoutSeconds: 31 })).toThrow(
      'timeoutSeconds: must be an integer from 1 to 30, got 31',
    );
  });
});
