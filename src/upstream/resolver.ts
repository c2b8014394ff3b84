// The sidecar's own DNS resolution through c-ares (dns.Resolver), not
// getaddrinfo, so NXDOMAIN, NODATA, SERVFAIL, REFUSED and timeouts stay
// distinct. Answers are cached by their TTL; concurrent lookups of one name share
// one query. Search domains from resolv.conf are applied like the libc resolver
// does for names with fewer dots than `ndots`, so Service names work in a pod.
// The pieces that decide what is asked (candidate names, the query of one name,
// which failure speaks for a name) are exported: `originguard diagnose` walks
// them server by server and must ask exactly what the sidecar asks.
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { DnsError } from './errors.ts';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** An address record as answered, with its TTL in seconds. */
export interface AddressRecord extends ResolvedAddress {
  readonly ttl: number;
}

interface CacheEntry {
  readonly addresses: readonly ResolvedAddress[];
  readonly expiresAt: number;
}

export interface ResolverOptions {
  /** DNS servers ("127.0.0.1:5353"); default: the system's (/etc/resolv.conf). */
  readonly servers?: readonly string[];
  /** Search domains and ndots; default: read from /etc/resolv.conf. */
  readonly search?: readonly string[];
  readonly ndots?: number;
  /** Upper bound for cached TTLs, seconds. */
  readonly maxTtlSeconds?: number;
}

/** How a name is expanded before it is asked: resolv.conf's search list and ndots. */
export interface SearchSettings {
  readonly search: readonly string[];
  readonly ndots: number;
}

const RANK = new Map<string, number>(
  Object.entries({ ENODATA: 1, ENOTFOUND: 2, EREFUSED: 3, ESERVFAIL: 4, ETIMEOUT: 5 }),
);

/** True when failure code `a` says more about a name than `b` (a timeout beats SERVFAIL beats NXDOMAIN...). */
export const moreTelling = (a: string, b: string | undefined): boolean =>
  b === undefined || (RANK.get(a) ?? 0) > (RANK.get(b) ?? 0);

/** Like libc, the search goes on past "no such name" and "no address"; any other failure ends it. */
export const keepSearching = (code: string): boolean => code === 'ENOTFOUND' || code === 'ENODATA';

/** The search list and ndots of a resolv.conf text (libc's defaults where it says nothing). */
export function parseSearchSettings(text: string): SearchSettings {
  const search = /^\s*(?:search|domain)\s+(.+)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
  const ndots = Number(/ndots:(\d+)/.exec(text)?.[1] ?? 1);
  return { search, ndots };
}

function readResolvConf(): SearchSettings {
  try {
    return parseSearchSettings(readFileSync('/etc/resolv.conf', 'utf8'));
  } catch {
    return { search: [], ndots: 1 };
  }
}

/** The search settings a Resolver built with `options` uses: explicit servers mean no search list. */
export function searchSettingsOf(options: ResolverOptions): SearchSettings {
  const conf = options.search === undefined || options.ndots === undefined ? readResolvConf() : undefined;
  return {
    search: options.search ?? (options.servers === undefined ? (conf?.search ?? []) : []),
    ndots: options.ndots ?? conf?.ndots ?? 1,
  };
}

/** The names asked for `name`, in order: absolute names as they are, else search domains first below ndots dots. */
export function candidateNames(name: string, settings: SearchSettings): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)];
  const dots = name.split('.').length - 1;
  const searched = settings.search.map((d) => `${name}.${d}`);
  return dots >= settings.ndots ? [name, ...searched] : [...searched, name];
}

/** Addresses the resolver answers without asking DNS: IP literals and localhost; undefined for a name to ask. */
export function literalAddresses(host: string): readonly ResolvedAddress[] | undefined {
  const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(literal);
  if (family !== 0) return [{ address: literal, family: family as 4 | 6 }];
  const name = host.toLowerCase();
  if (name === 'localhost' || name === 'localhost.') {
    return [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ];
  }
  return undefined;
}

// An empty answer is no data: c-ares gives [] rather than ENODATA when a CNAME leads nowhere.
const failureCode = (r: PromiseSettledResult<unknown>): string =>
  r.status === 'fulfilled' ? 'ENODATA' : ((r.reason as { code?: string }).code ?? 'EBADRESP');

/**
 * Asks one name's A and AAAA records (A first). Throws DnsError when neither
 * answers an address: the A query's error speaks for the name unless AAAA's says more.
 */
export async function queryAddresses(resolver: dns.Resolver, name: string): Promise<AddressRecord[]> {
  const [v4, v6] = await Promise.allSettled([
    resolver.resolve4(name, { ttl: true }),
    resolver.resolve6(name, { ttl: true }),
  ]);
  const records: AddressRecord[] = [];
  if (v4.status === 'fulfilled') for (const r of v4.value) records.push({ ...r, family: 4 });
  if (v6.status === 'fulfilled') for (const r of v6.value) records.push({ ...r, family: 6 });
  if (records.length > 0) return records;
  const c4 = failureCode(v4);
  const c6 = failureCode(v6);
  const code = moreTelling(c6, c4) ? c6 : c4;
  throw new DnsError(code, name, `${name}: ${code}`);
}

export class Resolver {
  readonly #servers: readonly string[] | undefined;
  readonly #resolvers = new Map<number, dns.Resolver>();
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<readonly ResolvedAddress[]>>();
  readonly #settings: SearchSettings;
  readonly #maxTtlMs: number;

  constructor(options: ResolverOptions = {}) {
    this.#servers = options.servers;
    this.#settings = searchSettingsOf(options);
    this.#maxTtlMs = (options.maxTtlSeconds ?? 300) * 1000;
  }

  /** Addresses for a host (IP literals pass through), A before AAAA. Throws DnsError. */
  async resolve(host: string, timeoutMs: number): Promise<readonly ResolvedAddress[]> {
    const literal = literalAddresses(host);
    if (literal !== undefined) return literal;
    const name = host.toLowerCase();
    const cached = this.#cache.get(name);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.addresses;
    let pending = this.#inflight.get(name);
    if (pending === undefined) {
      pending = this.#lookup(name, timeoutMs).finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, pending);
    }
    return pending;
  }

  #resolverFor(timeoutMs: number): dns.Resolver {
    const t = Math.max(1, Math.round(timeoutMs));
    let r = this.#resolvers.get(t);
    if (r === undefined) {
      r = new dns.Resolver({ timeout: t, tries: 1 });
      if (this.#servers !== undefined) r.setServers([...this.#servers]);
      this.#resolvers.set(t, r);
    }
    return r;
  }

  async #lookup(name: string, timeoutMs: number): Promise<readonly ResolvedAddress[]> {
    const resolver = this.#resolverFor(timeoutMs);
    let worst: DnsError | undefined;
    for (const candidate of candidateNames(name, this.#settings)) {
      try {
        return this.#remember(name, await queryAddresses(resolver, candidate));
      } catch (err) {
        const e = err as DnsError;
        // Report the most telling error of the names tried.
        if (moreTelling(e.code, worst?.code)) worst = e;
        if (!keepSearching(e.code)) break;
      }
    }
    throw worst ?? new DnsError('ENOTFOUND', name, `${name}: no such name`);
  }

  #remember(name: string, records: readonly AddressRecord[]): ResolvedAddress[] {
    const addresses = records.map(({ address, family }) => ({ address, family }));
    const ttl = Math.min(...records.map((r) => r.ttl));
    const ttlMs = Math.min(Number.isFinite(ttl) ? ttl * 1000 : 0, this.#maxTtlMs);
    if (ttlMs > 0) this.#cache.set(name, { addresses, expiresAt: Date.now() + ttlMs });
    return addresses;
  }
}
