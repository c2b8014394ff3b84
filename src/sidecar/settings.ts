// The sidecar's settings and their defaults, one place for both modes: the
// command's flags (standalone and --cluster) and the programmatic entries
// (startClusterSidecar, the tests and benches that run sidecars in-process).
import { isIP } from 'node:net';
import { parseDuration } from '../api/duration.ts';
import { UsageError } from '../errors.ts';
import { durationMs, portNumber, positiveInt } from '../flags.ts';
import type { ClientLimits } from './listener.ts';

export const SIDECAR_DEFAULTS = {
  adminPort: 9901,
  adminAddress: '0.0.0.0',
  logLevel: 'info',
  drainTimeout: '30s',
  reportDebounce: '250ms',
  reportHeartbeat: '30s',
  maxRequestBody: 100 * 1024 * 1024,
  /** Request bodies held in memory at once before forwarding, all Origins together (spec.request.bodyBufferBytes each). */
  requestBufferMemory: 16 * 1024 * 1024,
  maxHeaderSize: 16 * 1024,
  clientHeaderTimeout: '10s',
  clientRequestTimeout: '5m',
  /** Idle time of a kept-alive client connection (longer than the usual 60 s of the hop in front). */
  keepAliveTimeoutMs: 65_000,
} as const;

export const DEFAULT_LIMITS: ClientLimits = {
  maxHeaderBytes: SIDECAR_DEFAULTS.maxHeaderSize,
  headersTimeoutMs: parseDuration(SIDECAR_DEFAULTS.clientHeaderTimeout),
  requestTimeoutMs: parseDuration(SIDECAR_DEFAULTS.clientRequestTimeout),
  keepAliveTimeoutMs: SIDECAR_DEFAULTS.keepAliveTimeoutMs,
};

/** The command's flags as parsed (strings), before validation. */
export interface SidecarFlags {
  readonly 'pod-labels-file'?: string | undefined;
  readonly 'listen-address'?: string | undefined;
  readonly 'report-debounce': string;
  readonly 'report-heartbeat': string;
  readonly 'admin-port': string;
  readonly 'admin-address': string;
  readonly 'dns-server'?: readonly string[] | undefined;
  readonly 'drain-timeout': string;
  readonly 'max-request-body': string;
  readonly 'request-buffer-memory': string;
  readonly 'max-header-size': string;
  readonly 'client-header-timeout': string;
  readonly 'client-request-timeout': string;
}

export interface SidecarSettings {
  readonly podLabelsFile: string | undefined;
  /** Binds every Origin's listener on this address instead of its spec.listen.address. */
  readonly listenAddress: string | undefined;
  readonly reportDebounceMs: number;
  readonly reportHeartbeatMs: number;
  readonly adminPort: number;
  readonly adminAddress: string;
  readonly dnsServers: readonly string[];
  readonly drainMs: number;
  readonly maxBodyBytes: number;
  readonly requestBufferMemory: number;
  readonly limits: ClientLimits;
}

/** Validates the flags; throws UsageError naming the flag. */
export function readSettings(flags: SidecarFlags): SidecarSettings {
  const listen = flags['listen-address'];
  if (listen !== undefined && isIP(listen) === 0)
    throw new UsageError(
      `--listen-address: must be an IP address such as 0.0.0.0, :: or 10.1.2.3, got "${listen}"`,
    );
  return {
    podLabelsFile: flags['pod-labels-file'],
    listenAddress: listen,
    reportDebounceMs: durationMs('report-debounce', flags['report-debounce']),
    reportHeartbeatMs: durationMs('report-heartbeat', flags['report-heartbeat']),
    adminPort: portNumber('admin-port', flags['admin-port']),
    adminAddress: flags['admin-address'],
    dnsServers: flags['dns-server'] ?? [],
    drainMs: durationMs('drain-timeout', flags['drain-timeout']),
    maxBodyBytes: positiveInt('max-request-body', flags['max-request-body']),
    requestBufferMemory: positiveInt('request-buffer-memory', flags['request-buffer-memory']),
    limits: {
      maxHeaderBytes: positiveInt('max-header-size', flags['max-header-size']),
      headersTimeoutMs: durationMs('client-header-timeout', flags['client-header-timeout']),
      requestTimeoutMs: durationMs('client-request-timeout', flags['client-request-timeout']),
      keepAliveTimeoutMs: SIDECAR_DEFAULTS.keepAliveTimeoutMs,
    },
  };
}
