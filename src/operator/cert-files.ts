// The webhook's serving certificate from files another party manages, e.g. a
// cert-manager Certificate's Secret mounted into the pod (tls.crt, tls.key), with
// cert-manager's CA injector keeping the webhook configuration's caBundle. The
// operator then only reads the files and swaps in a renewed pair; it writes no
// Secret and no caBundle.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WebhookCertificateError } from './errors.ts';
import type { CertificatePair } from './pki.ts';

export interface CertificateFilesOptions {
  dir: string;
  logger: Logger;
  /** How often the files are checked for a renewal (default 10 s; kubelet updates Secret volumes within about a minute). */
  pollMs?: number;
  onCertificate: (pair: CertificatePair) => void;
}

export class CertificateFiles {
  readonly #opts: CertificateFilesOptions;
  #current: CertificatePair | undefined;
  #stamp = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: CertificateFilesOptions) {
    this.#opts = opts;
  }

  get current(): CertificatePair | undefined {
    return this.#current;
  }

  /** Reads the pair (throws naming the file if it cannot), then checks for renewals until stop(). */
  async start(): Promise<CertificatePair> {
    const pair = await this.#read();
    this.#schedule();
    return pair;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#read().then(
        () => this.#schedule(),
        (err: unknown) => {
          // Mid-update (the kubelet swaps a symlink) or removed: keep serving the pair in use.
          this.#opts.logger.warn(
            { err: (err as Error).message },
            'webhook certificate files unreadable; keeping the current pair',
          );
          this.#schedule();
        },
      );
    }, this.#opts.pollMs ?? 10_000);
    this.#timer.unref();
  }

  async #read(): Promise<CertificatePair> {
    const certFile = join(this.#opts.dir, 'tls.crt');
    const keyFile = join(this.#opts.dir, 'tls.key');
    const stamps = await Promise.all(
      [certFile, keyFile].map(async (f) => {
        try {
          const s = await stat(f);
          return `${s.mtimeMs}:${s.size}:${s.ino}`;
        } catch (err) {
          throw new WebhookCertificateError(
            `webhook certificate: cannot read ${f}: ${(err as Error).message}`,
          );
        }
      }),
    );
    const stamp = stamps.join('|');
    if (stamp === this.#stamp && this.#current !== undefined) return this.#current;
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    this.#stamp = stamp;
    if (this.#current?.cert !== cert || this.#current.key !== key) {
      const first = this.#current === undefined;
      this.#current = { cert, key };
      if (!first)
        this.#opts.logger.info(
          { dir: this.#opts.dir },
          'webhook certificate files changed; serving the new pair',
        );
      this.#opts.onCertificate(this.#current);
    }
    return this.#current;
  }
}
