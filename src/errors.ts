// The one error family of the program, after undici's lib/core/errors.js and
// fastify's lib/errors.js: every error originguard throws extends
// OriginguardError and carries a stable `code` (a log field and, where it
// applies, a metric label). Each layer declares its own in its errors.ts and
// exports the codes, so whoever matches a code imports it.

export abstract class OriginguardError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The code of any error: ours, Node's (errno names) or a library's; undefined if it has none. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

export const USAGE = 'OG_USAGE';

/** A flag or setting the user must fix; the command prints it and exits 2 (64 where sysexits apply). */
export class UsageError extends OriginguardError {
  readonly code = USAGE;
}
