// Errors of the Kubernetes layer: an API server's error answer (or no answer),
// and credentials that cannot be loaded.
import { OriginguardError } from '../errors.ts';

export const KUBE_API = 'OG_KUBE_API';
export const KUBE_CONFIG = 'OG_KUBE_CONFIG';

/** An error answer from the API server, or a failure to reach it. `status` 0 means no answer. */
export class KubeApiError extends OriginguardError {
  readonly code = KUBE_API;
  readonly method: string;
  readonly path: string;
  /** HTTP status; 0 when the API server could not be reached. */
  readonly status: number;
  /** metav1.Status reason, e.g. NotFound, Conflict, Forbidden, Invalid. */
  readonly reason: string;

  constructor(method: string, path: string, status: number, reason: string, message: string) {
    super(`${method} ${path}: ${status === 0 ? '' : `${status} `}${message}`);
    this.method = method;
    this.path = path;
    this.status = status;
    this.reason = reason;
  }
}

/** No cluster configured, or a token or CA file that cannot be read. */
export class KubeConfigError extends OriginguardError {
  readonly code = KUBE_CONFIG;
}

export const isNotFound = (err: unknown) => err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown) => err instanceof KubeApiError && err.status === 409;
/** No answer at all: the API server could not be reached (any answer, even 403, means it is there). */
export const isUnreachable = (err: unknown) => err instanceof KubeApiError && err.status === 0;
