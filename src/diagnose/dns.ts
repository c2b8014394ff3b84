// Checklist step 1, DNS. Each configured server is asked on its own, walking the
// candidate names exactly as the sidecar's resolver does (search domains, ndots,
// where the search stops), so the names tried and each outcome are shown per
// server; then the sidecar's own resolver answers as it would in the proxy (all
// servers, in c-ares' order): its addresses are the ones probed next.
import { promises as dns } from 'node:dns';
import { classifyError } from '../upstream/classify.ts';
import { DnsError } from '../upstream/errors.ts';
import type { RawError } from '../upstream/failure.ts';
import {
  type AddressRecord,
  candidateNames,
  keepSearching,
  literalAddresses,
  moreTelling,
  queryAddresses,
  type ResolvedAddress,
  Resolver,
  type ResolverOptions,
  type SearchSettings,
  searchSettingsOf,
} from '../upstream/resolver.ts';
import { outcomeOf } from './explain.ts';
import type { DnsDetail, DnsQuery, Step } from './schema.ts';

const MAX_CNAME_HOPS = 8;

interface Walk {
  readonly queries: DnsQuery[];
  records: AddressRecord[];
  answeredName: string | null;
  cnames: string[];
  failure: string | undefined;
}

/** Rejects with a DNS timeout after `ms` and cancels the resolver's queries, as the sidecar's deadline does. */
function deadline<T>(work: Promise<T>, ms: number, resolver: dns.Resolver | undefined, host: string) {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      resolver?.cancel();
      reject(new DnsError('ETIMEOUT', host, `${host}: no DNS answer within ${ms}ms`));
    }, ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** The CNAME chain from `name`, hop by hop; best effort (the sidecar does not ask it). */
async function cnameChain(resolver: dns.Resolver, name: string): Promise<string[]> {
  const chain: string[] = [];
  let current = name;
  for (let i = 0; i < MAX_CNAME_HOPS; i++) {
    const next = await resolver.resolveCname(current).then(
      (targets) => targets[0],
      () => undefined,
    );
    if (next === undefined || chain.includes(next)) break;
    chain.push(next);
    current = next;
  }
  return chain;
}

async function walk(resolver: dns.Resolver, names: readonly string[], into: Walk): Promise<void> {
  for (const name of names) {
    const started = performance.now();
    try {
      into.records = await queryAddresses(resolver, name);
      into.queries.push({ name, outcome: 'NOERROR', elapsedMs: performance.now() - started });
      into.answeredName = name;
      into.failure = undefined;
      into.cnames = await cnameChain(resolver, name);
      return;
    } catch (err) {
      const code = (err as RawError).code?.toString() ?? 'EBADRESP';
      into.queries.push({ name, outcome: outcomeOf(code), elapsedMs: performance.now() - started });
      if (moreTelling(code, into.failure)) into.failure = code;
      // No address: a CNAME leading nowhere is the usual reason, so show where it leads.
      if (code === 'ENODATA' && into.cnames.length === 0) into.cnames = await cnameChain(resolver, name);
      if (!keepSearching(code)) return;
    }
  }
}

function dnsStep(
  target: number,
  host: string,
  server: string | null,
  settings: SearchSettings,
  walked: Walk,
  elapsedMs: number,
): Step {
  const detail: DnsDetail = {
    host,
    server,
    search: [...settings.search],
    ndots: settings.ndots,
    // Copies: a walk cut by the deadline may still record its cancelled query.
    queries: [...walked.queries],
    answeredName: walked.answeredName,
    cnames: [...walked.cnames],
    addresses: walked.records.map((r) => ({ address: r.address, family: r.family, ttl: r.ttl })),
    rcode: null,
  };
  const base = { phase: 'dns' as const, target, address: server, elapsedMs, dns: detail };
  if (walked.answeredName !== null) {
    return { ...base, ok: true, cause: null, failedIn: null, code: null, detail: describeAnswer(detail) };
  }
  const code = walked.failure ?? 'ENOTFOUND';
  const c = classifyError({ name: 'DnsError', message: code, code }, 'dns');
  detail.rcode = c.rcode ?? null;
  return {
    ...base,
    ok: false,
    cause: c.cause,
    failedIn: 'dns',
    code,
    ...(c.rcode === undefined ? {} : { rcode: c.rcode }),
    detail: describeFailure(detail, code),
  };
}

function describeAnswer(d: DnsDetail): string {
  const chain = d.cnames.length > 0 ? ` (CNAME ${[d.answeredName, ...d.cnames].join(' → ')})` : '';
  const addrs = d.addresses.map((a) => `${a.address}${a.ttl === undefined ? '' : ` ttl ${a.ttl}s`}`);
  const tried =
    d.queries.length > 1 ? `; tried ${d.queries.map((q) => `${q.name} ${q.outcome}`).join(', ')}` : '';
  return `${d.answeredName} → ${addrs.join(', ')}${chain}${tried}`;
}

function describeFailure(d: DnsDetail, code: string): string {
  if (d.queries.length <= 1) return `${d.host}: ${outcomeOf(code)}`;
  return `${d.host}: ${outcomeOf(code)}; tried ${d.queries.map((q) => `${q.name} ${q.outcome}`).join(', ')}`;
}

/** One server asked on its own, within the connect timeout, as the sidecar would ask it. */
async function askServer(
  target: number,
  host: string,
  server: string,
  settings: SearchSettings,
  timeoutMs: number,
): Promise<Step> {
  const started = performance.now();
  const resolver = new dns.Resolver({ timeout: Math.max(1, Math.round(timeoutMs)), tries: 1 });
  resolver.setServers([server]);
  const walked: Walk = { queries: [], records: [], answeredName: null, cnames: [], failure: undefined };
  const names = candidateNames(host.toLowerCase(), settings);
  try {
    await deadline(walk(resolver, names, walked), timeoutMs, resolver, host);
  } catch {
    // The deadline: the name being asked gets the timeout.
    const asked = walked.queries.length;
    walked.queries.push({ name: names[asked] ?? host, outcome: 'timeout', elapsedMs: timeoutMs });
    walked.failure = 'ETIMEOUT';
    walked.answeredName = null;
  }
  return dnsStep(target, host, server, settings, walked, performance.now() - started);
}

export interface Resolution {
  readonly steps: Step[];
  /** The addresses the sidecar would try, in its order (resolved, then the extra ones); empty if DNS failed. */
  readonly addresses: ResolvedAddress[];
}

/** The servers the sidecar asks: the configured ones, or the system's (resolv.conf, as c-ares reads it). */
export function serversOf(options: ResolverOptions): string[] {
  return options.servers === undefined ? new dns.Resolver().getServers() : [...options.servers];
}

/**
 * DNS for one target: each server on its own, then the sidecar's resolver
 * (step with address null), whose answer gives the addresses to probe. With
 * `shared`, a running sidecar's own resolver (its cache included) is the only
 * one asked: a health check must not add DNS load, and sees what traffic sees.
 */
export async function resolveTarget(
  target: number,
  host: string,
  options: ResolverOptions,
  timeoutMs: number,
  shared?: Resolver,
): Promise<Resolution> {
  const literal = literalAddresses(host);
  if (literal !== undefined) return { steps: [], addresses: [...literal] };
  const settings = searchSettingsOf(options);
  const started = performance.now();
  const sidecar = shared ?? new Resolver(options);
  const servers = shared === undefined ? serversOf(options) : [];
  const [perServer, asSidecar] = await Promise.all([
    Promise.all(servers.map((s) => askServer(target, host, s, settings, timeoutMs))),
    deadline(sidecar.resolve(host, timeoutMs), timeoutMs, undefined, host).then(
      (addresses) => ({ addresses: [...addresses] }),
      (err: unknown) => ({ error: err as RawError }),
    ),
  ]);
  const elapsedMs = performance.now() - started;
  const detail: DnsDetail = {
    host,
    server: null,
    search: [...settings.search],
    ndots: settings.ndots,
    queries: [],
    answeredName: null,
    cnames: [],
    addresses: [],
    rcode: null,
  };
  const base = { phase: 'dns' as const, target, address: null, elapsedMs };
  if ('addresses' in asSidecar) {
    detail.addresses = asSidecar.addresses.map((a) => ({ address: a.address, family: a.family }));
    detail.answeredName = perServer.find((s) => s.ok)?.dns?.answeredName ?? host;
    const line = `as the sidecar resolves it: ${asSidecar.addresses.map((a) => a.address).join(', ')}`;
    const step: Step = {
      ...base,
      ok: true,
      cause: null,
      failedIn: null,
      code: null,
      detail: line,
      dns: detail,
    };
    return { steps: [...perServer, step], addresses: asSidecar.addresses };
  }
  const code = asSidecar.error.code?.toString() ?? 'EBADRESP';
  const c = classifyError(asSidecar.error, 'dns');
  detail.rcode = c.rcode ?? null;
  const step: Step = {
    ...base,
    ok: false,
    cause: c.cause,
    failedIn: 'dns',
    code,
    ...(c.rcode === undefined ? {} : { rcode: c.rcode }),
    detail: `as the sidecar resolves it: ${outcomeOf(code)}`,
    dns: detail,
  };
  return { steps: [...perServer, step], addresses: [] };
}
