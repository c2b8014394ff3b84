// Prometheus metrics of the sidecar, in base units with _total counters. Label
// values are bounded: origin keys come from config, causes from the RFC 9209 list.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'originguard_requests_total',
    help: 'Edge requests answered, by origin and status class.',
    labelNames: ['origin', 'code_class'] as const,
    registers: [this.registry],
  });
  readonly upstreamFailures = new Counter({
    name: 'originguard_upstream_failures_total',
    help: 'Requests that failed to reach or hear from the origin, by RFC 9209 cause and phase.',
    labelNames: ['origin', 'cause', 'phase'] as const,
    registers: [this.registry],
  });
  readonly connectDuration = new Histogram({
    name: 'originguard_upstream_connect_duration_seconds',
    help: 'Time to establish a connection to the origin (DNS, TCP and TLS), successful attempts.',
    labelNames: ['origin'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'originguard_request_duration_seconds',
    help: 'Time from receiving a request to the first byte of the answer (origin response or error).',
    labelNames: ['origin'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly ejected = new Gauge({
    name: 'originguard_origin_ejected',
    help: '1 while the origin is ejected after repeated connection failures (requests fail fast), else 0.',
    labelNames: ['origin'] as const,
    registers: [this.registry],
  });
  readonly healthChecks = new Counter({
    name: 'originguard_health_checks_total',
    help: 'Active health checks, by origin and result: success, failure, or skipped (traffic reached the origin within the interval).',
    labelNames: ['origin', 'result'] as const,
    registers: [this.registry],
  });
  readonly healthCheckFailures = new Counter({
    name: 'originguard_health_check_failures_total',
    help: 'Failed active health checks, by RFC 9209 cause and phase (as upstream_failures_total counts requests).',
    labelNames: ['origin', 'cause', 'phase'] as const,
    registers: [this.registry],
  });
  readonly healthCheckDuration = new Histogram({
    name: 'originguard_health_check_duration_seconds',
    help: 'Time one active health check took (every address probed, the path asked).',
    labelNames: ['origin'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly reachable = new Gauge({
    name: 'originguard_origin_reachable',
    help: '1 while the origin is Reachable, 0 while Unreachable (by requests or health checks), absent until either decides.',
    labelNames: ['origin'] as const,
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: 'originguard_config_reloads_total',
    help: 'Configuration changes seen, by result (applied or rejected).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'originguard_client_errors_total',
    help: 'Requests refused before proxying, by reason (unknown_host, absolute_form, body_too_large, ...).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** Open tunnels: their bytes are added to tunnelBytes at each scrape, not per chunk. */
  readonly liveTunnels = new Set<{ flushBytes(): void }>();
  readonly tunnelsOpen = new Gauge({
    name: 'originguard_tunnels_open',
    help: 'Upgraded connections (WebSocket and other protocols) open between a client and the origin.',
    labelNames: ['origin'] as const,
    registers: [this.registry],
  });
  readonly upgrades = new Counter({
    name: 'originguard_upgrades_total',
    help: 'Protocol upgrade requests, by result: switched (origin answered 101, tunnel opened), origin_refused (origin answered another status, passed to the client), failed (531/536 or http_upgrade_failed), not_allowed (protocol not in spec.upgrade.protocols, 501).',
    labelNames: ['origin', 'result'] as const,
    registers: [this.registry],
  });
  readonly tunnelBytes = new Counter({
    name: 'originguard_tunnel_bytes_total',
    help: 'Bytes carried through tunnels, by direction (client_to_origin, origin_to_client).',
    labelNames: ['origin', 'direction'] as const,
    registers: [this.registry],
    collect: () => {
      for (const t of this.liveTunnels) t.flushBytes();
    },
  });
  readonly tunnelIdleCloses = new Counter({
    name: 'originguard_tunnel_idle_closes_total',
    help: 'Tunnels closed because neither side sent anything for timeouts.streamIdle.',
    labelNames: ['origin'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'originguard_' });
  }
}

/** What a tunnel updates, resolved once per origin. */
export interface TunnelMetrics {
  readonly open: Gauge.Internal<'origin'>;
  readonly clientToOrigin: Counter.Internal;
  readonly originToClient: Counter.Internal;
  readonly idleCloses: Counter.Internal;
  readonly live: Set<{ flushBytes(): void }>;
}

export type UpgradeResult = 'switched' | 'origin_refused' | 'failed' | 'not_allowed';

/** Per-origin metric children, resolved once so the request path does no label hashing. */
export class OriginMetrics {
  readonly #byClass: Counter.Internal[];
  readonly requestDuration: Histogram.Internal<'origin'>;
  readonly connectDuration: Histogram.Internal<'origin'>;
  readonly tunnels: TunnelMetrics;
  readonly #metrics: SidecarMetrics;
  readonly #origin: string;

  constructor(metrics: SidecarMetrics, origin: string) {
    this.#metrics = metrics;
    this.#origin = origin;
    this.#byClass = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => metrics.requests.labels(origin, c));
    this.requestDuration = metrics.requestDuration.labels(origin);
    this.connectDuration = metrics.connectDuration.labels(origin);
    this.tunnels = {
      open: metrics.tunnelsOpen.labels(origin),
      clientToOrigin: metrics.tunnelBytes.labels(origin, 'client_to_origin'),
      originToClient: metrics.tunnelBytes.labels(origin, 'origin_to_client'),
      idleCloses: metrics.tunnelIdleCloses.labels(origin),
      live: metrics.liveTunnels,
    };
  }

  answered(statusCode: number): void {
    const i = Math.min(Math.max(Math.floor(statusCode / 100) - 1, 0), 4);
    this.#byClass[i]?.inc();
  }

  failed(cause: string, phase: string): void {
    this.#metrics.upstreamFailures.labels(this.#origin, cause, phase).inc();
  }

  upgrade(result: UpgradeResult): void {
    this.#metrics.upgrades.labels(this.#origin, result).inc();
  }

  setEjected(ejected: boolean): void {
    this.#metrics.ejected.labels(this.#origin).set(ejected ? 1 : 0);
  }
}

/** One origin's health-check metric children. */
export class CheckMetrics {
  readonly #metrics: SidecarMetrics;
  readonly #origin: string;
  readonly skipped: Counter.Internal;
  readonly #success: Counter.Internal;
  readonly #failure: Counter.Internal;
  readonly #duration: Histogram.Internal<'origin'>;

  constructor(metrics: SidecarMetrics, origin: string) {
    this.#metrics = metrics;
    this.#origin = origin;
    this.skipped = metrics.healthChecks.labels(origin, 'skipped');
    this.#success = metrics.healthChecks.labels(origin, 'success');
    this.#failure = metrics.healthChecks.labels(origin, 'failure');
    this.#duration = metrics.healthCheckDuration.labels(origin);
  }

  observe(outcome: {
    readonly ok: boolean;
    readonly elapsedMs: number;
    readonly failure?: { readonly cause: string; readonly phase: string };
  }): void {
    this.#duration.observe(outcome.elapsedMs / 1000);
    if (outcome.ok) this.#success.inc();
    else this.#failure.inc();
    if (outcome.failure !== undefined)
      this.#metrics.healthCheckFailures
        .labels(this.#origin, outcome.failure.cause, outcome.failure.phase)
        .inc();
  }
}
