// Errors of the operator: a webhook request that is not an AdmissionReview, a
// webhook certificate that cannot be read or stored, and install manifests asked
// for with impossible values.
import { OriginguardError } from '../errors.ts';

export const BAD_REVIEW = 'OG_BAD_REVIEW';
export const WEBHOOK_CERTIFICATE = 'OG_WEBHOOK_CERTIFICATE';
export const INVALID_MANIFEST = 'OG_INVALID_MANIFEST';

/** A request to the webhook that is not a usable AdmissionReview; answered with `status` and the message. */
export class BadReviewError extends OriginguardError {
  readonly code = BAD_REVIEW;
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The webhook's serving certificate cannot be read (cert-dir mode) or kept in its Secret. */
export class WebhookCertificateError extends OriginguardError {
  readonly code = WEBHOOK_CERTIFICATE;
}

/** An install manifest asked for with a value the API server would refuse. */
export class InvalidManifestError extends OriginguardError {
  readonly code = INVALID_MANIFEST;
}
