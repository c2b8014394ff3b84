// Everything the request path needs for one Origin, built once per spec
// version: the undici pool (whose connector walks addresses and backups), the
// outlier detector, the error-answer options and the metric children. A config
// change builds a new runtime; requests in flight finish on the old one.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Pool as UndiciPool } from 'undici';
// Only undici's Pool is needed; its package entry also loads fetch, WebSocket and
// caches, about 14 MB of resident memory that every pod would pay for nothing.
import Pool from 'undici/lib/dispatcher/pool.js';
import { originKey } from '../api/contract.ts';
import { parseDuration } from '../api/duration.ts';
import type { OriginManifest, UpstreamTLS } from '../api/origin.ts';
import type { RequestPolicy } from '../api/traffic.ts';
import { AddressBook } from '../upstream/address-book.ts';
import { type ConnectTarget, undiciConnector } from '../upstream/connector.ts';
import { hostPort } from '../upstream/host-port.ts';
import { tolerateUnsolicitedContinue } from '../upstream/informational.ts';
import type { Resolver } from '../upstream/resolver.ts';
import type { ErrorResponseOptions } from './error-response.ts';
import { type ForwardingTrust, forwardingTrust } from './forwarding-trust.ts';
import type { OriginHealth } from './health.ts';
import { HealthChecker } from './health-check.ts';
import { CheckMetrics, OriginMetrics, type SidecarMetrics } from './metrics.ts';
import { type EjectionChange, OutlierDetector } from './outlier.ts';
import type { Routable } from './router.ts';

export interface RuntimeDeps {
  readonly resolver: Resolver;
  readonly metrics: SidecarMetrics;
  readonly health: OriginHealth;
  readonly logger: Logger;
  /** Reads a CA file named by spec.upstream.tls.caFile. */
  readonly readFile?: (path: string) => string;
}

function tlsOf(
  t: UpstreamTLS | undefined,
  readFile: (path: string) => string,
): ConnectTarget['tls'] | undefined {
  if (t === undefined || !t.enabled) return undefined;
  const ca = t.caBundle ?? (t.caFile === undefined ? undefined : readFile(t.caFile));
  return {
    ...(t.serverName === undefined ? {} : { servername: t.serverName }),
    ...(ca === undefined ? {} : { ca }),
    rejectUnauthorized: !t.insecureSkipVerify,
  };
}

export class OriginRuntime implements Routable {
  readonly key: string;
  readonly manifest: OriginManifest;
  readonly listen: { readonly port: number; readonly address: string };
  readonly hosts?: readonly string[];
  readonly pool: UndiciPool;
  readonly outlier: OutlierDetector;
  readonly errorOptions: Omit<ErrorResponseOptions, 'requestId'>;
  readonly responseTimeoutMs: number;
  /** Longest silence inside a started response body or a tunnel (timeouts.streamIdle). */
  readonly streamIdleMs: number;
  /** spec.upgrade.protocols, lower case; undefined: every protocol but h2c. */
  readonly upgradeProtocols: readonly string[] | undefined;
  readonly hostOverride: string | undefined;
  readonly defaultHost: string;
  readonly cdnId: string;
  /** spec.request: body buffering, header names with underscores, TRACE. */
  readonly requestPolicy: RequestPolicy;
  /** spec.forwardedHeaders: whose X-Forwarded-* and Forwarded are believed. */
  readonly trust: ForwardingTrust;
  readonly health: OriginHealth;
  readonly metrics: OriginMetrics;
  /** The active checks (spec.healthCheck); undefined when they are off. Started once the runtime serves. */
  readonly checker: HealthChecker | undefined;
  /** Canonical spec text: a reload that does not change it keeps this runtime. */
  readonly fingerprint: string;

  constructor(manifest: OriginManifest, deps: RuntimeDeps) {
    const spec = manifest.spec;
    this.key = originKey(manifest);
    this.manifest = manifest;
    this.listen = spec.listen;
    if (spec.hosts !== undefined) this.hosts = spec.hosts;
    this.fingerprint = JSON.stringify(spec);
    this.health = deps.health;
    this.health.generation = manifest.metadata.generation;
    this.metrics = new OriginMetrics(deps.metrics, this.key);
    // A client without Host (HTTP/1.0) gets the origin's own name, never undici's nominal one.
    this.hostOverride = spec.upstream.hostHeader;
    this.defaultHost = hostPort(spec.upstream.host, spec.upstream.port);
    // Loop detection must recognise every sidecar of this Origin, and only those.
    this.cdnId = `originguard-${createHash('sha256').update(this.key).digest('hex').slice(0, 12)}`;
    this.responseTimeoutMs = parseDuration(spec.timeouts.response);
    this.streamIdleMs = parseDuration(spec.timeouts.streamIdle);
    this.upgradeProtocols = spec.upgrade.protocols?.map((p) => p.toLowerCase());
    this.requestPolicy = spec.request;
    this.trust = forwardingTrust(spec.forwardedHeaders);
    this.errorOptions = {
      profile: spec.errorResponse.statusProfile,
      retryAfterSeconds: Math.ceil(parseDuration(spec.errorResponse.retryAfter) / 1000),
      showDetails: spec.errorResponse.showDetails,
      proxyName: 'originguard',
    };
    this.outlier = new OutlierDetector(
      {
        consecutiveFailures: spec.outlierDetection.consecutiveFailures,
        baseEjectionMs: parseDuration(spec.outlierDetection.baseEjectionTime),
        maxEjectionMs: parseDuration(spec.outlierDetection.maxEjectionTime),
      },
      undefined,
      (change) => this.#onEjection(change, deps.logger),
    );
    this.health.watchEjection(this.outlier);
    this.metrics.setEjected(false);
    const readFile = deps.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
    const primaryTls = tlsOf(spec.upstream.tls, readFile);
    const targets: ConnectTarget[] = [
      {
        host: spec.upstream.host,
        port: spec.upstream.port,
        extraAddresses: spec.upstream.addresses ?? [],
        ...(primaryTls === undefined ? {} : { tls: primaryTls }),
      },
      ...(spec.upstream.backups ?? []).map((b) => {
        const t = tlsOf(b.tls, readFile);
        return { host: b.host, port: b.port, extraAddresses: [], ...(t === undefined ? {} : { tls: t }) };
      }),
    ];
    const addressBook = new AddressBook();
    this.health.watchAddresses(addressBook);
    this.checker = HealthChecker.for({
      manifest,
      resolver: deps.resolver,
      health: this.health,
      outlier: this.outlier,
      addressBook,
      metrics: new CheckMetrics(deps.metrics, this.key),
      logger: deps.logger,
      // A CA file the sidecar cannot read fails the runtime above; here it would only be noted.
      readFile: (p) => {
        try {
          return readFile(p);
        } catch {
          return undefined;
        }
      },
    });
    const idleMs = parseDuration(spec.timeouts.idle);
    // The pool's URL is nominal: the connector decides where connections go.
    this.pool = new Pool('http://upstream.originguard.invalid', {
      connect: undiciConnector({
        targets,
        attemptsPerAddress: spec.upstream.connectAttempts,
        connectTimeoutMs: parseDuration(spec.timeouts.connect),
        resolver: deps.resolver,
        addressBook,
        onConnected: (ms) => this.metrics.connectDuration.observe(ms / 1000),
      }),
      keepAliveTimeout: idleMs,
      keepAliveMaxTimeout: idleMs,
      // Both are timed by the request path itself, to the millisecond: the response
      // timeout until the first byte, then timeouts.streamIdle between body chunks.
      headersTimeout: 0,
      bodyTimeout: 0,
      pipelining: 1,
    });
    tolerateUnsolicitedContinue(this.pool);
  }

  #onEjection(change: EjectionChange, logger: Logger): void {
    this.metrics.setEjected(change.ejected);
    if (change.ejected) {
      this.checker?.ejected(change.retryInMs);
      logger.warn(
        { origin: this.key, cause: change.cause, retryInMs: change.retryInMs, ejections: change.ejections },
        this.checker === undefined
          ? 'origin ejected: failing fast while probing'
          : 'origin ejected: failing fast until a health check reaches it',
      );
    }
  }

  /** Starts the active checks, if any: once this runtime serves the Origin. */
  startChecks(): void {
    this.checker?.start();
  }

  /** Stops taking requests and checking; resolves once those in flight are done. */
  async close(): Promise<void> {
    await Promise.all([this.checker?.stop(), this.pool.close()]);
  }

  async destroy(): Promise<void> {
    await Promise.all([this.checker?.stop(), this.pool.destroy()]);
  }
}
