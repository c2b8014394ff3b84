/**
 * A tiny authoritative UDP DNS server on 127.0.0.1 (random free port) for tests.
 *
 * It implements just enough of RFC 1035 to answer A and AAAA questions from a
 * per-name table, and to produce every DNS failure the sidecar classifies:
 *
 * | behaviour  | wire                                  | c-ares (`dns.promises.Resolver`) |
 * |------------|---------------------------------------|----------------------------------|
 * | `answer`   | NOERROR + A/AAAA records with a TTL   | resolves (`{ttl: true}` gives TTL)|
 * | `nodata`   | NOERROR, no answer records            | `ENODATA`                        |
 * | `nxdomain` | RCODE 3                               | `ENOTFOUND`                      |
 * | `servfail` | RCODE 2                               | `ESERVFAIL`                      |
 * | `refused`  | RCODE 5                               | `EREFUSED`                       |
 * | `silent`   | never answers                         | `ETIMEOUT` (after `timeout` × `tries`) |
 * | `cname`    | NOERROR + CNAME (+ the target's records) | follows it; `resolveCname` gives the target |
 *
 * An `answer` for a name that has only A records answers an AAAA question with
 * NODATA (and vice versa), as a real server does. Names not in the table get the
 * `fallback` behaviour (NXDOMAIN unless told otherwise). Names are matched
 * case-insensitively, without the trailing dot. Any behaviour may carry
 * `delayMs` (the answer is sent that much later).
 *
 * Timeouts, as observed with Node 24 (c-ares 1.34.x), matter for an exact DNS budget:
 * - c-ares raises any per-try timeout below 250 ms to 250 ms (MIN_TIMEOUT_MS);
 * - Node drives c-ares' timeouts from a periodic timer of min(timeout, 1000) ms, so a
 *   silent server gives ETIMEOUT after anywhere between `timeout` and 2 × `timeout`
 *   (timeout 300 → 300 or 600 ms; 150 → ~300 ms);
 * - after 3+ answered queries c-ares may adapt the timeout to 5 × the server's
 *   average latency (ares_metrics.c), bounded by [250 ms, maxTimeout].
 * A sidecar that needs an exact DNS timeout must run its own timer and `cancel()`.
 *
 * Usage with the sidecar's resolver:
 * ```ts
 * await using dns = await startDnsServer({ 'origin.test': { kind: 'answer', a: ['127.0.0.2'], ttl: 30 } });
 * const r = dns.resolver({ timeoutMs: 200 }); // new Resolver({timeout: 200, tries: 1}) + setServers
 * await r.resolve4('origin.test', { ttl: true }); // [{ address: '127.0.0.2', ttl: 30 }]
 * ```
 */
import dgram from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import net from 'node:net';

export type DnsBehaviour =
  | { kind: 'answer'; a?: readonly string[]; aaaa?: readonly string[]; ttl?: number; delayMs?: number }
  | { kind: 'cname'; target: string; ttl?: number; delayMs?: number }
  | { kind: 'nodata' | 'nxdomain' | 'servfail' | 'refused' | 'silent'; delayMs?: number };

export type DnsTable = Record<string, DnsBehaviour>;

export interface DnsQueryRecord {
  /** Lower-cased name, without the trailing dot. */
  name: string;
  /** 'A', 'AAAA', or `TYPE<n>` for anything else. */
  type: string;
  at: number;
}

export interface DnsServerHandle {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `'127.0.0.1:PORT'`, ready for `Resolver.setServers([...])`. */
  readonly address: string;
  /** Replaces (or adds) the behaviour of one name; takes effect on the next query. */
  set(name: string, behaviour: DnsBehaviour): void;
  /** Removes a name from the table (it then gets the fallback behaviour). */
  delete(name: string): void;
  /** Number of questions received for `name` (all types), or for every name when omitted. */
  queryCount(name?: string): number;
  /** Every question received, in order. */
  readonly queries: readonly DnsQueryRecord[];
  /** A c-ares resolver pointed at this server only: `new Resolver({timeout, tries: 1})`. */
  resolver(opts?: { timeoutMs?: number; tries?: number }): dnsPromises.Resolver;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface DnsServerOptions {
  /** Behaviour for names not in the table. Default `{kind: 'nxdomain'}`. */
  fallback?: DnsBehaviour;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_CNAME = 5;
const CLASS_IN = 1;
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

interface ParsedQuery {
  id: number;
  flags: number;
  name: string;
  qtype: number;
  /** The raw question section (QNAME + QTYPE + QCLASS), echoed verbatim in the answer. */
  question: Buffer;
}

/** Parses the header and the first question of a query. Returns undefined for anything malformed. */
export function parseQuery(msg: Buffer): ParsedQuery | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const qdcount = msg.readUInt16BE(4);
  if ((flags & 0x8000) !== 0 || qdcount < 1) return undefined; // a response, or no question
  const labels: string[] = [];
  let off = 12;
  // Bounded: a name is at most 255 bytes, so at most 128 labels.
  for (let i = 0; i < 128; i++) {
    const len = msg[off];
    if (len === undefined) return undefined;
    off += 1;
    if (len === 0) break;
    if ((len & 0xc0) !== 0 || off + len > msg.length) return undefined; // no compression in questions
    labels.push(msg.toString('latin1', off, off + len));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  const qtype = msg.readUInt16BE(off);
  const question = msg.subarray(12, off + 4);
  return { id, flags, name: normaliseName(labels.join('.')), qtype, question };
}

/** IPv4 or IPv6 text to its 4 or 16 network-order bytes. */
export function ipToBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map((p) => Number(p)));
  if (!net.isIPv6(ip) || ip.includes('.')) throw new Error(`not a plain IPv6 address: ${ip}`);
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

function typeName(qtype: number): string {
  if (qtype === TYPE_A) return 'A';
  if (qtype === TYPE_AAAA) return 'AAAA';
  if (qtype === TYPE_CNAME) return 'CNAME';
  return `TYPE${qtype}`;
}

/** A name in wire format (uncompressed labels). */
function encodeName(name: string): Buffer {
  const labels = normaliseName(name)
    .split('.')
    .filter((l) => l !== '');
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

interface Record_ {
  owner: Buffer;
  type: number;
  ttl: number;
  rdata: Buffer;
}

/** The address records of `b` for `qtype`; a CNAME chain is followed through `lookup` (at most 8 hops). */
function recordsOf(
  owner: Buffer,
  qtype: number,
  b: DnsBehaviour,
  lookup: (name: string) => DnsBehaviour | undefined,
  hops = 0,
): Record_[] {
  if (b.kind === 'answer') {
    const list = qtype === TYPE_A ? b.a : qtype === TYPE_AAAA ? b.aaaa : undefined;
    return (list ?? []).map((ip) => ({ owner, type: qtype, ttl: b.ttl ?? 60, rdata: ipToBytes(ip) }));
  }
  if (b.kind !== 'cname') return [];
  const cname: Record_ = { owner, type: TYPE_CNAME, ttl: b.ttl ?? 60, rdata: encodeName(b.target) };
  const next = lookup(normaliseName(b.target));
  if (qtype === TYPE_CNAME || next === undefined || hops >= 8) return [cname];
  return [cname, ...recordsOf(encodeName(b.target), qtype, next, lookup, hops + 1)];
}

/**
 * Builds the response to `q` under behaviour `b` (never called for `silent`). A
 * CNAME answers every question type, followed by the target's records when
 * `lookup` knows them, as a recursive server answers.
 */
export function buildResponse(
  q: ParsedQuery,
  b: DnsBehaviour,
  lookup: (name: string) => DnsBehaviour | undefined = () => undefined,
): Buffer {
  const RCODES = { nxdomain: RCODE.NXDOMAIN, servfail: RCODE.SERVFAIL, refused: RCODE.REFUSED } as const;
  const rcode: number = b.kind in RCODES ? RCODES[b.kind as keyof typeof RCODES] : RCODE.NOERROR;
  // The first owner is the question's name: a pointer to the QNAME at offset 12.
  const records = recordsOf(Buffer.from([0xc0, 0x0c]), q.qtype, b, lookup);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR=1, opcode copied, AA=1, RD copied, RA=1, rcode.
  const flags = 0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode;
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(records.length, 6); // ANCOUNT
  const answers = records.map((r) => {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(r.type, 0);
    fixed.writeUInt16BE(CLASS_IN, 2);
    fixed.writeUInt32BE(r.ttl, 4);
    fixed.writeUInt16BE(r.rdata.length, 8);
    return Buffer.concat([r.owner, fixed, r.rdata]);
  });
  return Buffer.concat([header, q.question, ...answers]);
}

/** Starts the server. Every name in `table` is normalised (lower case, no trailing dot). */
export async function startDnsServer(
  table: DnsTable = {},
  opts: DnsServerOptions = {},
): Promise<DnsServerHandle> {
  const entries = new Map<string, DnsBehaviour>();
  for (const [name, b] of Object.entries(table)) entries.set(normaliseName(name), b);
  const fallback: DnsBehaviour = opts.fallback ?? { kind: 'nxdomain' };
  const queries: DnsQueryRecord[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const resolvers = new Set<dnsPromises.Resolver>();
  let closed = false;

  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const q = parseQuery(msg);
    if (q === undefined || closed) return;
    queries.push({ name: q.name, type: typeName(q.qtype), at: Date.now() });
    const b = entries.get(q.name) ?? fallback;
    if (b.kind === 'silent') return;
    const reply = buildResponse(q, b, (name) => entries.get(name));
    const send = () => {
      if (!closed) sock.send(reply, rinfo.port, rinfo.address);
    };
    if (b.delayMs !== undefined && b.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, b.delayMs);
      timers.add(t);
    } else {
      send();
    }
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      sock.off('error', reject);
      resolve();
    });
  });
  const port = sock.address().port;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    for (const r of resolvers) r.cancel();
    await new Promise<void>((resolve) => sock.close(() => resolve()));
  };

  return {
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    set(name, behaviour) {
      entries.set(normaliseName(name), behaviour);
    },
    delete(name) {
      entries.delete(normaliseName(name));
    },
    queryCount(name) {
      if (name === undefined) return queries.length;
      const n = normaliseName(name);
      return queries.filter((q) => q.name === n).length;
    },
    queries,
    resolver(ropts = {}) {
      const r = new dnsPromises.Resolver({ timeout: ropts.timeoutMs ?? 500, tries: ropts.tries ?? 1 });
      r.setServers([`127.0.0.1:${port}`]);
      resolvers.add(r);
      return r;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
