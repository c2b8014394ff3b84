// Errors of the sidecar itself: a client that went away or sent too much, and an
// injected environment or labels file the sidecar cannot use. Errors of reaching
// the origin are in ../upstream/errors.ts.
import { OriginguardError } from '../errors.ts';

export const CLIENT_GONE = 'OG_CLIENT_GONE';
export const BODY_TOO_LARGE = 'OG_BODY_TOO_LARGE';
export const CLIENT_BODY = 'OG_CLIENT_BODY';
export const MISSING_ENV = 'OG_MISSING_ENV';
export const POD_LABELS = 'OG_POD_LABELS';
/** Failure codes of answers the proxy decides without an error: the origin is ejected, the request loops. */
export const EJECTED = 'OG_EJECTED';
export const CDN_LOOP = 'OG_CDN_LOOP';
/** Failure code of a 101 that switched to a protocol the client did not offer (http_upgrade_failed). */
export const UPGRADE_MISMATCH = 'OG_UPGRADE_MISMATCH';

/** The client closed its connection: the upstream request is cancelled; nothing is the origin's fault. */
export class ClientGoneError extends OriginguardError {
  readonly code = CLIENT_GONE;
  constructor() {
    super('client closed the connection');
  }
}

/** The client's request body broke off (it disconnected or timed out mid-body): the client's doing, never the origin's. */
export class ClientBodyError extends OriginguardError {
  readonly code = CLIENT_BODY;
  constructor() {
    super('the client stopped sending its request body');
  }
}

/** A request body past the limit (413 if nothing was answered yet). */
export class BodyTooLargeError extends OriginguardError {
  readonly code = BODY_TOO_LARGE;
  constructor(max: number) {
    super(`request body larger than ${max} bytes`);
  }
}

/** A variable the injected container must have; the command prints it and exits 2. */
export class MissingEnvError extends OriginguardError {
  readonly code = MISSING_ENV;
  readonly variable: string;

  constructor(variable: string, what: string) {
    super(
      `${variable} is not set: cluster mode needs ${what} (the injection webhook sets it from the downward API)`,
    );
    this.variable = variable;
  }
}

/** The pod's labels file (downward API) cannot be read or parsed; the message names the file and line. */
export class PodLabelsError extends OriginguardError {
  readonly code = POD_LABELS;
}
