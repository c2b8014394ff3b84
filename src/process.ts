// The life of a long-running command: wait for SIGTERM or SIGINT, shut down
// gracefully, and turn the outcome into the exit code.
import type { Logger } from 'pino';

/** Resolves with the exit code once a signal arrives and `shutdown` settles: 0 if it resolves, 1 if it rejects. */
export function untilSignal(
  logger: Logger,
  shutdown: (signal: NodeJS.Signals) => Promise<void>,
): Promise<number> {
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      shutdown(signal).then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/**
 * untilSignal for a server that drains: stops accepting, lets requests in flight
 * finish within `drainMs` (`drain` resolves whether they all did), then exits 0.
 */
export function drainOnSignal(
  logger: Logger,
  drainMs: number,
  drain: () => Promise<boolean>,
): Promise<number> {
  return untilSignal(logger, async (signal) => {
    logger.info({ signal, drainTimeoutMs: drainMs }, 'draining: not accepting new connections');
    const clean = await drain();
    logger.info(
      { clean },
      clean ? 'drained; exiting' : 'drain timeout reached; closed remaining connections',
    );
  });
}
