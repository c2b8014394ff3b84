// What to probe, decided before any I/O: TARGET parsed (a URL, host:port or
// origin/NAME), and an Origin turned into the upstreams, TLS settings, timeouts
// and Host header its sidecar uses. Flags given on the command line win and are
// noted, so a diagnosis never silently differs from what the sidecar does.
import { isIP } from 'node:net';
import { parseDuration } from '../api/duration.ts';
import type { OriginManifest, StatusProfile, UpstreamTLS } from '../api/origin.ts';
import { UsageError } from '../errors.ts';
import { hostPort } from '../upstream/host-port.ts';
import type { ResolverOptions } from '../upstream/resolver.ts';

export interface TlsPlan {
  /** SNI and name to check, when set explicitly; else the sidecar's default (the host, when a name). */
  readonly servername?: string;
  /** PEM to verify against instead of the system roots. */
  readonly ca?: string;
  /** What the chain is verified against, for people: "system roots", "--ca-file ca.pem"... */
  readonly trust: string;
  /** Verification failures are reported but not enforced (--insecure, insecureSkipVerify). */
  readonly insecure: boolean;
}

export interface TargetPlan {
  readonly host: string;
  readonly port: number;
  /** Tried after the resolved addresses (spec.upstream.addresses). */
  readonly extraAddresses: readonly string[];
  readonly tls?: TlsPlan;
}

export interface Plan {
  readonly input: string;
  readonly origin: { readonly namespace: string; readonly name: string } | null;
  /** The upstream, then its backups, in the order the sidecar tries them. */
  readonly targets: readonly TargetPlan[];
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly path: string;
  readonly hostHeader: string;
  readonly profile: StatusProfile;
  readonly resolver: ResolverOptions;
  /** Where this run differs from the sidecar's (overrides, files it cannot read). */
  readonly notes: readonly string[];
}

export type ParsedTarget =
  | { kind: 'url'; tls: boolean; host: string; port: number; path: string; authority: string }
  | { kind: 'hostport'; host: string; port: number }
  | { kind: 'origin'; name: string };

/** Options given on the command line; each one set overrides the Origin's value. */
export interface PlanFlags {
  readonly ca?: { readonly path: string; readonly pem: string };
  readonly serverName?: string;
  readonly insecure?: boolean;
  /** host:port targets: speak TLS. */
  readonly tls?: boolean;
  readonly connectTimeoutMs?: number;
  readonly responseTimeoutMs?: number;
  readonly path?: string;
  readonly hostHeader?: string;
  readonly resolver?: ResolverOptions;
}

/** The Origin API's defaults, for targets that are not Origins. */
export const DEFAULT_TIMEOUTS = { connectMs: 5000, responseMs: 60_000 } as const;

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const ORIGIN_REF = /^(?:origins?|origins?\.edge\.originguard\.dev)\/(.*)$/;

function port(text: string, input: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`TARGET "${input}": port must be 1-65535, got "${text}"`);
  return n;
}

/** Parses TARGET: https://host[:port][/path], http://..., host:port, [v6]:port, or origin/NAME. */
export function parseTarget(input: string): ParsedTarget {
  const ref = ORIGIN_REF.exec(input);
  if (ref !== null) {
    const name = ref[1] ?? '';
    if (!NAME.test(name))
      throw new UsageError(
        `TARGET "${input}": "${name}" is not an Origin name (lower case, digits, - and .)`,
      );
    return { kind: 'origin', name };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) return parseUrl(input);
  const hp = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):([^:]*)$/.exec(input);
  if (hp === null) {
    throw new UsageError(
      `TARGET "${input}": expected a URL (https://shop.example/health), host:port, or origin/NAME`,
    );
  }
  const host = (hp[1] as string).replace(/^\[(.*)\]$/, '$1');
  return { kind: 'hostport', host, port: port(hp[2] as string, input) };
}

function parseUrl(input: string): ParsedTarget {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new UsageError(`TARGET "${input}": not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`TARGET "${input}": only http:// and https:// URLs are diagnosed`);
  if (url.username !== '' || url.password !== '')
    throw new UsageError(`TARGET "${input}": credentials in the URL are not sent; remove them`);
  const tls = url.protocol === 'https:';
  return {
    kind: 'url',
    tls,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (tls ? 443 : 80) : Number(url.port),
    path: `${url.pathname}${url.search}`,
    authority: url.host,
  };
}

function flagTls(flags: PlanFlags, base: TlsPlan | undefined, notes: string[]): TlsPlan {
  const tls: { servername?: string; ca?: string; trust: string; insecure: boolean } = {
    trust: base?.trust ?? 'system roots',
    insecure: base?.insecure ?? false,
    ...(base?.servername === undefined ? {} : { servername: base.servername }),
    ...(base?.ca === undefined ? {} : { ca: base.ca }),
  };
  if (flags.ca !== undefined) {
    tls.ca = flags.ca.pem;
    tls.trust = `--ca-file ${flags.ca.path}`;
  }
  if (flags.serverName !== undefined) tls.servername = flags.serverName;
  if (flags.insecure === true) tls.insecure = true;
  if (base !== undefined) {
    if (flags.ca !== undefined) notes.push(`--ca-file replaces the Origin's CA (${base.trust})`);
    if (flags.serverName !== undefined) notes.push(`--server-name replaces the Origin's serverName`);
    if (flags.insecure === true && !base.insecure)
      notes.push('--insecure: certificate failures are shown but not enforced, unlike the sidecar');
  }
  return tls;
}

/** A URL or host:port target, with the Origin API's default timeouts unless flags say otherwise. */
export function planForAddress(input: string, target: ParsedTarget, flags: PlanFlags): Plan {
  if (target.kind === 'origin') throw new UsageError('planForAddress: an Origin needs planForOrigin');
  const useTls = target.kind === 'url' ? target.tls : flags.tls === true;
  if (!useTls && (flags.ca !== undefined || flags.serverName !== undefined || flags.insecure === true)) {
    throw new UsageError(
      `--ca-file, --server-name and --insecure apply to TLS: use an https:// URL${target.kind === 'hostport' ? ' or --tls' : ''}`,
    );
  }
  const notes: string[] = [];
  const tls = useTls ? flagTls(flags, undefined, notes) : undefined;
  const authority = target.kind === 'url' ? target.authority : hostPort(target.host, target.port);
  return {
    input,
    origin: null,
    targets: [{ host: target.host, port: target.port, extraAddresses: [], ...(tls ? { tls } : {}) }],
    connectTimeoutMs: flags.connectTimeoutMs ?? DEFAULT_TIMEOUTS.connectMs,
    responseTimeoutMs: flags.responseTimeoutMs ?? DEFAULT_TIMEOUTS.responseMs,
    path: flags.path ?? (target.kind === 'url' ? target.path : '/'),
    hostHeader: flags.hostHeader ?? authority,
    profile: 'Uniform',
    resolver: flags.resolver ?? {},
    notes,
  };
}

/** An Origin's TLS as its sidecar sets it up; a caFile this machine cannot read is noted. */
function originTls(
  t: UpstreamTLS | undefined,
  readFile: (path: string) => string | undefined,
  notes: string[],
): TlsPlan | undefined {
  if (t === undefined || !t.enabled) return undefined;
  let ca = t.caBundle;
  let trust = ca === undefined ? 'system roots' : 'spec.upstream.tls.caBundle';
  if (t.caFile !== undefined) {
    ca = readFile(t.caFile);
    trust = ca === undefined ? 'system roots' : `caFile ${t.caFile}`;
    if (ca === undefined)
      notes.push(
        `tls.caFile ${t.caFile} is a path inside the sidecar and cannot be read here: verifying against the system roots (pass --ca-file)`,
      );
  }
  return {
    ...(t.serverName === undefined ? {} : { servername: t.serverName }),
    ...(ca === undefined ? {} : { ca }),
    trust,
    insecure: t.insecureSkipVerify,
  };
}

/** The Host the sidecar sends: the override, else a host the Origin serves, else host:port. */
function originHost(manifest: OriginManifest): string {
  const up = manifest.spec.upstream;
  const served = manifest.spec.hosts?.find((h) => !h.startsWith('*.'));
  return up.hostHeader ?? served ?? hostPort(up.host, up.port);
}

/** What the Origin's sidecar would connect to and how; flags given override it (and are noted). */
export function planForOrigin(
  input: string,
  manifest: OriginManifest,
  flags: PlanFlags,
  readFile: (path: string) => string | undefined,
): Plan {
  const spec = manifest.spec;
  const notes: string[] = [];
  const withFlags = (t: TlsPlan | undefined) => (t === undefined ? undefined : flagTls(flags, t, notes));
  const primaryTls = withFlags(originTls(spec.upstream.tls, readFile, notes));
  const targets: TargetPlan[] = [
    {
      host: spec.upstream.host,
      port: spec.upstream.port,
      extraAddresses: spec.upstream.addresses ?? [],
      ...(primaryTls === undefined ? {} : { tls: primaryTls }),
    },
    ...(spec.upstream.backups ?? []).map((b) => {
      const tls = withFlags(originTls(b.tls, readFile, notes));
      return { host: b.host, port: b.port, extraAddresses: [], ...(tls === undefined ? {} : { tls }) };
    }),
  ];
  if (primaryTls === undefined && (flags.ca !== undefined || flags.serverName !== undefined))
    throw new UsageError(
      `--ca-file and --server-name apply to TLS, and Origin ${manifest.metadata.name} does not use TLS`,
    );
  if (flags.connectTimeoutMs !== undefined) notes.push('--connect-timeout replaces spec.timeouts.connect');
  if (flags.responseTimeoutMs !== undefined) notes.push('--response-timeout replaces spec.timeouts.response');
  return {
    input,
    origin: { namespace: manifest.metadata.namespace ?? 'default', name: manifest.metadata.name },
    targets,
    connectTimeoutMs: flags.connectTimeoutMs ?? parseDuration(spec.timeouts.connect),
    responseTimeoutMs: flags.responseTimeoutMs ?? parseDuration(spec.timeouts.response),
    path: flags.path ?? '/',
    hostHeader: flags.hostHeader ?? originHost(manifest),
    profile: spec.errorResponse.statusProfile,
    resolver: flags.resolver ?? {},
    notes,
  };
}

/** The SNI the sidecar sends to a target: the configured serverName, else the host when it is a name. */
export function sniOf(target: TargetPlan): string | undefined {
  return target.tls?.servername ?? (isIP(target.host) === 0 ? target.host : undefined);
}

/**
 * A name only a cluster's DNS answers: *.svc, *.svc.<domain> or *.cluster.local;
 * with the Origin's namespace (an Origin from the cluster, whose pods have the
 * cluster's search list) also a bare or namespace-relative Service name.
 */
export function clusterOnlyHost(host: string, namespace: string | undefined): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (/\.svc(\.|$)/.test(h) || h.endsWith('.cluster.local')) return true;
  if (namespace === undefined || /^[0-9.]+$/.test(h) || h.includes(':') || h === 'localhost') return false;
  const labels = h.split('.');
  return labels.length === 1 || (labels.length === 2 && labels[1] === namespace);
}

/** host:port as the steps show it (IPv6 in brackets). */
