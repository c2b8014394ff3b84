// Errors of `originguard diagnose` and `status` that are not about the origin:
// an Origin that cannot be had (file invalid, not declared, not in the cluster).
// What goes wrong reaching the origin is never an error here but the result.
import { OriginguardError } from '../errors.ts';

export const INVALID_CONFIG = 'OG_DIAGNOSE_INVALID_CONFIG';
export const ORIGIN_UNAVAILABLE = 'OG_DIAGNOSE_ORIGIN_UNAVAILABLE';
/** Failure code of a health check whose path answered a status it was not expected to. */
export const UNEXPECTED_STATUS = 'OG_UNEXPECTED_STATUS';

/** The --config file cannot be read, is invalid, or does not declare the Origin asked for (exit 65). */
export class InvalidConfigError extends OriginguardError {
  readonly code = INVALID_CONFIG;
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = []) {
    super(message);
    this.problems = problems;
  }
}

/** The Origin cannot be read from the cluster: no kubeconfig, API unreachable, forbidden, not found (exit 69). */
export class OriginUnavailableError extends OriginguardError {
  readonly code = ORIGIN_UNAVAILABLE;
}
