// Whether a pod gets the sidecar, and the JSON Patch that injects it. Pure: the
// webhook server calls it with the AdmissionRequest's pod and the Origins of the
// pod's namespace from the operator's cache. Learned from Istio and Linkerd:
// system namespaces and hostNetwork pods are skipped, injection is idempotent and
// looks at initContainers too (linkerd2 #12395), and the native sidecar goes first
// so it is up before the app starts and stops after it.

import {
  CA_FILE,
  INJECT_ANNOTATION,
  INJECTED_ANNOTATION,
  LABELS_FILE,
  SIDECAR_CONTAINER,
  SIDECAR_ENV,
  TOKEN_FILE,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME,
} from '../api/contract.ts';
import type { OriginSpec } from '../api/origin.ts';
import { selects } from '../api/selector.ts';
import { escapePointer, type JsonPatchOperation, type Pod } from '../kube/objects.ts';
import { PRODUCT_VERSION } from '../version.ts';

/** How the injected container looks; the operator's flags and Helm values fill it in. */
export interface SidecarTemplate {
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** native: init container with restartPolicy Always (Kubernetes ≥ 1.29); container: a plain container. */
  mode: 'native' | 'container';
  adminPort: number;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  /** Lifetime asked for the pod-bound token; the kubelet refreshes it at 80 %. */
  tokenExpirationSeconds: number;
  logLevel: string;
  /** Operator version, written to the injected annotation (which pods run an old sidecar). */
  version: string;
}

export const DEFAULT_SIDECAR_TEMPLATE: SidecarTemplate = {
  image: `ghcr.io/originguard/originguard:${PRODUCT_VERSION}`,
  imagePullPolicy: 'IfNotPresent',
  mode: 'native',
  adminPort: 9901,
  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
  // The default of kube-api-access volumes: 1 h plus 7 s, so the API server's
  // extended-expiry logic treats it like the standard token.
  tokenExpirationSeconds: 3607,
  logLevel: 'info',
  version: PRODUCT_VERSION,
};

/** The parts of an Origin the decision reads. */
export interface InjectableOrigin {
  metadata: { name: string; namespace?: string };
  spec: Pick<OriginSpec, 'selector' | 'listen'>;
}

/** Why a pod was left alone; stable codes, used as metric labels and in logs. */
export type SkipReason =
  | 'excluded-namespace'
  | 'opted-out'
  | 'already-injected'
  | 'host-network'
  | 'no-origin-selects';

export type InjectionDecision =
  | { inject: false; reason: SkipReason }
  | { inject: true; origins: string[]; patch: JsonPatchOperation[] };

export interface InjectionInput {
  /** From the AdmissionRequest: a pod being created may not carry it yet. */
  namespace: string;
  pod: Pod;
  /** Origins of the pod's namespace (others are ignored). */
  origins: readonly InjectableOrigin[];
  /** System namespaces plus the operator's own. */
  excludedNamespaces: readonly string[];
  template: SidecarTemplate;
}

export function decideInjection(input: InjectionInput): InjectionDecision {
  const { namespace, pod, template } = input;
  if (input.excludedNamespaces.includes(namespace)) return { inject: false, reason: 'excluded-namespace' };
  if (pod.metadata?.annotations?.[INJECT_ANNOTATION] === 'false')
    return { inject: false, reason: 'opted-out' };
  const named = (c: { name: string }) => c.name === SIDECAR_CONTAINER;
  if (pod.spec?.containers?.some(named) || pod.spec?.initContainers?.some(named)) {
    return { inject: false, reason: 'already-injected' };
  }
  // The sidecar's ports would be the node's ports: skipped, as Istio does.
  if (pod.spec?.hostNetwork === true) return { inject: false, reason: 'host-network' };
  const selecting = input.origins
    .filter((o) => (o.metadata.namespace ?? namespace) === namespace)
    .filter((o) => selects(o.spec.selector, pod.metadata?.labels))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (selecting.length === 0) return { inject: false, reason: 'no-origin-selects' };
  const ports = [...new Set(selecting.map((o) => o.spec.listen.port))].sort((a, b) => a - b);
  return {
    inject: true,
    origins: selecting.map((o) => o.metadata.name),
    patch: injectionPatch(pod, template, ports),
  };
}

function injectionPatch(pod: Pod, template: SidecarTemplate, ports: number[]): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  const container = sidecarContainer(template, ports);
  if (template.mode === 'native') {
    // First, so it is started (and ready) before any other init container runs.
    ops.push(
      pod.spec?.initContainers === undefined
        ? { op: 'add', path: '/spec/initContainers', value: [container] }
        : { op: 'add', path: '/spec/initContainers/0', value: container },
    );
  } else {
    ops.push(
      pod.spec?.containers === undefined
        ? { op: 'add', path: '/spec/containers', value: [container] }
        : { op: 'add', path: '/spec/containers/-', value: container },
    );
  }
  const volume = tokenVolume(template);
  const volumes = pod.spec?.volumes;
  const existing = volumes?.findIndex((v) => v.name === TOKEN_VOLUME) ?? -1;
  // A copied spec may carry the volume without the container: replace it rather than duplicate the name.
  if (volumes === undefined) ops.push({ op: 'add', path: '/spec/volumes', value: [volume] });
  else if (existing >= 0) ops.push({ op: 'replace', path: `/spec/volumes/${existing}`, value: volume });
  else ops.push({ op: 'add', path: '/spec/volumes/-', value: volume });
  if (pod.metadata === undefined) {
    ops.push({
      op: 'add',
      path: '/metadata',
      value: { annotations: { [INJECTED_ANNOTATION]: template.version } },
    });
  } else if (pod.metadata.annotations === undefined) {
    ops.push({
      op: 'add',
      path: '/metadata/annotations',
      value: { [INJECTED_ANNOTATION]: template.version },
    });
  } else {
    ops.push({
      op: 'add',
      path: `/metadata/annotations/${escapePointer(INJECTED_ANNOTATION)}`,
      value: template.version,
    });
  }
  return ops;
}

const fieldEnv = (name: string, fieldPath: string) => ({
  name,
  valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } },
});

function sidecarContainer(template: SidecarTemplate, listenPorts: number[]): Record<string, unknown> {
  const admin = template.adminPort;
  const probe = (path: string, periodSeconds: number) => ({
    httpGet: { path, port: admin, scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  return {
    name: SIDECAR_CONTAINER,
    image: template.image,
    imagePullPolicy: template.imagePullPolicy,
    ...(template.mode === 'native' ? { restartPolicy: 'Always' } : {}),
    command: ['originguard'],
    args: ['sidecar', '--cluster', `--admin-port=${admin}`, `--log-level=${template.logLevel}`],
    env: [
      fieldEnv(SIDECAR_ENV.podName, 'metadata.name'),
      fieldEnv(SIDECAR_ENV.podNamespace, 'metadata.namespace'),
      fieldEnv(SIDECAR_ENV.podUid, 'metadata.uid'),
      fieldEnv(SIDECAR_ENV.serviceAccount, 'spec.serviceAccountName'),
      // Failures are grouped by node (and zone) in the Origin's status.
      fieldEnv(SIDECAR_ENV.nodeName, 'spec.nodeName'),
      { name: SIDECAR_ENV.tokenFile, value: `${TOKEN_MOUNT_PATH}/${TOKEN_FILE}` },
      { name: SIDECAR_ENV.caFile, value: `${TOKEN_MOUNT_PATH}/${CA_FILE}` },
    ],
    ports: [
      { name: 'og-admin', containerPort: admin, protocol: 'TCP' },
      // An Origin listening on the admin port is a conflict the sidecar reports; the spec must stay valid.
      ...listenPorts
        .filter((p) => p !== admin)
        .map((p) => ({ name: `og-${p}`, containerPort: p, protocol: 'TCP' })),
    ],
    readinessProbe: probe('/readyz', 5),
    livenessProbe: probe('/healthz', 10),
    resources: structuredClone(template.resources),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: TOKEN_VOLUME, mountPath: TOKEN_MOUNT_PATH, readOnly: true }],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** Like the kube-api-access volume, but mounted in the sidecar alone: the app gets no extra credential. */
function tokenVolume(template: SidecarTemplate): Record<string, unknown> {
  return {
    name: TOKEN_VOLUME,
    projected: {
      defaultMode: 0o444,
      sources: [
        { serviceAccountToken: { path: TOKEN_FILE, expirationSeconds: template.tokenExpirationSeconds } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: CA_FILE }] } },
        {
          downwardAPI: {
            items: [
              { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
              // A file, not env: the kubelet rewrites it when the labels change (which Origins select the pod).
              { path: LABELS_FILE, fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
            ],
          },
        },
      ],
    },
  };
}
