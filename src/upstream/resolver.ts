// The sidecar's own DNS resolution through c-ares (dns.Resolver), not
// getaddrinfo, so NXDOMAIN, NODATA, SERVFAIL, REFUSED and timeouts stay
// distinct. Answers are cached by their TTL; concurrent lookups of one name share
// one query. Search domains from resolv.conf are applied like the libc resolver
// does for names with fewer dots than `ndots`, so Service names work in a pod.
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { DnsError } from './errors.ts';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
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

const RANK = new Map<string, number>(
  Object.entries({ ENODATA: 1, ENOTFOUND: 2, EREFUSED: 3, ESERVFAIL: 4, ETIMEOUT: 5 }),
);

function readResolvConf(): { search: string[]; ndots: number } {
  try {
    const text = readFileSync('/etc/resolv.conf', 'utf8');
    const search = /^\s*(?:search|domain)\s+(.+)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    const ndots = Number(/ndots:(\d+)/.exec(text)?.[1] ?? 1);
    return { search, ndots };
  } catch {
    return { search: [], ndots: 1 };
  }
}

export class Resolver {
  readonly #servers: readonly string[] | undefined;
  readonly #resolvers = new Map<number, dns.Resolver>();
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<readonly ResolvedAddress[]>>();
  readonly #search: readonly string[];
  readonly #ndots: number;
  readonly #maxTtlMs: number;

  constructor(options: ResolverOptions = {}) {
    this.#servers = options.servers;
    const conf = options.search === undefined || options.ndots === undefined ? readResolvConf() : undefined;
    this.#search = options.search ?? (options.servers === undefined ? (conf?.search ?? []) : []);
    this.#ndots = options.ndots ?? conf?.ndots ?? 1;
    this.#maxTtlMs = (options.maxTtlSeconds ?? 300) * 1000;
  }

  /** Addresses for a host (IP literals pass through), A before AAAA. Throws DnsError. */
  async resolve(host: string, timeoutMs: number): Promise<readonly ResolvedAddress[]> {
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

  #candidates(name: string): string[] {
    if (name.endsWith('.')) return [name.slice(0, -1)];
    const dots = name.split('.').length - 1;
    const searched = this.#search.map((d) => `${name}.${d}`);
    return dots >= this.#ndots ? [name, ...searched] : [...searched, name];
  }

  async #lookup(name: string, timeoutMs: number): Promise<readonly ResolvedAddress[]> {
    const resolver = this.#resolverFor(timeoutMs);
    let worst: DnsError | undefined;
    for (const candidate of this.#candidates(name)) {
      try {
        const addresses = await this.#query(resolver, candidate);
        return addresses;
      } catch (err) {
        const e = err as DnsError;
        // Like libc: keep searching past "no such name"; report the most telling error.
        if (worst === undefined || (RANK.get(e.code) ?? 0) > (RANK.get(worst.code) ?? 0)) worst = e;
        if (e.code !== 'ENOTFOUND' && e.code !== 'ENODATA') break;
      }
    }
    throw worst ?? new DnsError('ENOTFOUND', name, `${name}: no such name`);
  }

  async #query(resolver: dns.Resolver, name: string): Promise<readonly ResolvedAddress[]> {
    const [v4, v6] = await Promise.allSettled([
      resolver.resolve4(name, { ttl: true }),
      resolver.resolve6(name, { ttl: true }),
    ]);
    const addresses: ResolvedAddress[] = [];
    let ttl = Number.POSITIVE_INFINITY;
    const take = (records: readonly { address: string; ttl: number }[], family: 4 | 6) => {
      for (const r of records) {
        addresses.push({ address: r.address, family });
        ttl = Math.min(ttl, r.ttl);
      }
    };
    if (v4.status === 'fulfilled') take(v4.value, 4);
    if (v6.status === 'fulfilled') take(v6.value, 6);
    if (addresses.length > 0) {
      const ttlMs = Math.min(Number.isFinite(ttl) ? ttl * 1000 : 0, this.#maxTtlMs);
      if (ttlMs > 0) this.#cache.set(name, { addresses, expiresAt: Date.now() + ttlMs });
      return addresses;
    }
    // Both failed: the A query's error speaks for the name unless AAAA's says more.
    const e4 = (v4 as PromiseRejectedResult).reason as { code?: string };
    const e6 = (v6 as PromiseRejectedResult).reason as { code?: string };
    const code =
      (RANK.get(e6.code ?? '') ?? 0) > (RANK.get(e4.code ?? '') ?? 0)
        ? (e6.code ?? 'EBADRESP')
        : (e4.code ?? 'EBADRESP');
    throw new DnsError(code, name, `${name}: ${code}`);
  }
}
