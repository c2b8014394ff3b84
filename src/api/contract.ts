// What the operator and the sidecar it injects must agree on: the container's
// name, the environment and files through which the pod tells the sidecar who it
// is, the annotations on pods, and the field manager of the sidecar's report
// writes. Both sides import it from here, so neither loads the other's code.
import { GROUP } from './origin.ts';

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
/** Files of that volume: the token, the cluster CA and the pod's labels (downward API). */
export const TOKEN_FILE = 'token';
export const CA_FILE = 'ca.crt';
export const LABELS_FILE = 'labels';

/** Environment the injected sidecar reads its identity from (downward API). */
export const SIDECAR_ENV = {
  podName: 'ORIGINGUARD_POD_NAME',
  podNamespace: 'ORIGINGUARD_POD_NAMESPACE',
  podUid: 'ORIGINGUARD_POD_UID',
  serviceAccount: 'ORIGINGUARD_SERVICE_ACCOUNT',
  tokenFile: 'ORIGINGUARD_TOKEN_FILE',
  caFile: 'ORIGINGUARD_CA_FILE',
  /** spec.nodeName; optional: pods injected by an older operator do not have it. */
  nodeName: 'ORIGINGUARD_NODE_NAME',
} as const;

/**
 * Origin annotation: a request for the operator to run the checklist from its own
 * pod now; the value is the request's id, which status.operatorProbe.requestId
 * echoes once answered (kubectl originguard diagnose --from-operator sets it).
 */
export const DIAGNOSE_REQUEST_ANNOTATION = `${GROUP}/diagnose-request`;

/** Server-side-apply field manager of the sidecar's OriginReport writes. */
export const SIDECAR_FIELD_MANAGER = 'originguard-sidecar';

/** Stable key of an Origin across both processes (metric labels, /status, logs): namespace/name. */
export function originKey(o: {
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined };
}): string {
  return `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
}
