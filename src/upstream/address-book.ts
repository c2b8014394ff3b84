// What the connector remembers of an origin's addresses between connections, so
// that a dead address costs one stagger once rather than a connect timeout on
// every new connection: the address that answered last goes first, an address
// whose attempt failed goes last until it connects again. Pure: no sockets, no
// timers; the connector reports outcomes and asks for an order.

/** An address of one target, as the connector tries it. */
export interface Candidate {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
}

/** preferred: connected last (tried first); connected: connected before; failed: its last attempt failed (tried last). */
export type AddressState = 'preferred' | 'connected' | 'failed';

export interface AddressRecord {
  readonly address: string;
  readonly port: number;
  readonly state: AddressState;
  /** Last outcome, ms since the epoch. */
  readonly since?: number;
  /** Cause of the last failure, while failed. */
  readonly cause?: string;
}

const keyOf = (c: { address: string; port: number }) => `${c.address}|${c.port}`;

/**
 * RFC 8305 §4: alternate address families, starting with the family of the first
 * address, so a broken IPv6 (or IPv4) path costs one stagger, not a turn per address.
 */
export function interleaveFamilies<T extends { readonly family: 4 | 6 }>(addresses: readonly T[]): T[] {
  const first = addresses[0]?.family;
  const a = addresses.filter((x) => x.family === first);
  const b = addresses.filter((x) => x.family !== first);
  const out: T[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i] as T);
    if (i < b.length) out.push(b[i] as T);
  }
  return out;
}

export class AddressBook {
  readonly #records = new Map<
    string,
    { address: string; port: number; ok: boolean; at: number; cause?: string }
  >();
  #preferred: string | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * The order to try `candidates` in: the one that connected last first, then the
   * others in the order given (interleaved by family), then those whose last
   * attempt failed, the longest-failed first (the likeliest to be back).
   */
  order(candidates: readonly Candidate[]): Candidate[] {
    const failedAt = (c: Candidate) => {
      const r = this.#records.get(keyOf(c));
      return r !== undefined && !r.ok ? r.at : undefined;
    };
    const healthy = interleaveFamilies(candidates.filter((c) => failedAt(c) === undefined));
    const preferred = healthy.findIndex((c) => keyOf(c) === this.#preferred);
    if (preferred > 0) healthy.unshift(...healthy.splice(preferred, 1));
    const failed = candidates
      .filter((c) => failedAt(c) !== undefined)
      .sort((x, y) => (failedAt(x) as number) - (failedAt(y) as number));
    return [...healthy, ...failed];
  }

  connected(c: Candidate): void {
    this.#records.set(keyOf(c), { address: c.address, port: c.port, ok: true, at: this.#now() });
    this.#preferred = keyOf(c);
  }

  /** A health check reached `c`: no longer tried last. Which address goes first stays the connector's call. */
  reachable(c: Candidate): void {
    this.#records.set(keyOf(c), { address: c.address, port: c.port, ok: true, at: this.#now() });
  }

  failed(c: Candidate, cause: string): void {
    this.#records.set(keyOf(c), { address: c.address, port: c.port, ok: false, at: this.#now(), cause });
    if (this.#preferred === keyOf(c)) this.#preferred = undefined;
  }

  /** Every address seen so far and what is known of it, for /status. */
  records(): AddressRecord[] {
    return [...this.#records.entries()].map(([key, r]) => ({
      address: r.address,
      port: r.port,
      state: key === this.#preferred ? 'preferred' : r.ok ? 'connected' : 'failed',
      since: r.at,
      ...(r.ok || r.cause === undefined ? {} : { cause: r.cause }),
    }));
  }
}
