// Whose forwarding headers to believe (spec.forwardedHeaders), decided per
// request from the peer's address alone: a trusted peer's X-Forwarded-* and
// Forwarded are kept and appended to, anyone else's replaced. Also who the client
// is, walking X-Forwarded-For from the right like nginx's real_ip_recursive
// (CIDR mode) or Envoy's xff_num_trusted_hops (hops mode).
import { BlockList, isIP } from 'node:net';
import type { ForwardedHeaders } from '../api/traffic.ts';

export interface ForwardingTrust {
  /** True when this peer's forwarding headers are believed. */
  trusts(peer: string): boolean;
  /** The client's address, given X-Forwarded-For as received (addresses, oldest first) and the peer. */
  client(xff: readonly string[], peer: string): string;
}

/** Node reports IPv4 peers of a dual-stack listener as ::ffff:a.b.c.d. */
export function plainAddress(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4
    ? address.slice(7)
    : address;
}

/** The addresses of X-Forwarded-For values, oldest first ("for" entries that are not addresses kept as is). */
export function xffAddresses(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) for (const part of v.split(',')) if (part.trim() !== '') out.push(part.trim());
  return out;
}

const NO_ONE: ForwardingTrust = { trusts: () => false, client: (_xff, peer) => peer };

function cidrTrust(ranges: readonly string[]): ForwardingTrust {
  const list = new BlockList();
  for (const r of ranges) {
    const [address = '', prefix] = r.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  const trusted = (a: string): boolean => {
    const plain = plainAddress(a);
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  };
  return {
    trusts: trusted,
    // The rightmost address that is not a trusted proxy; all trusted: the leftmost.
    client(xff, peer) {
      const chain = [...xff, peer];
      for (let i = chain.length - 1; i >= 0; i--) {
        const a = chain[i] as string;
        if (!trusted(a)) return plainAddress(a);
      }
      return plainAddress(chain[0] as string);
    },
  };
}

function hopsTrust(hops: number): ForwardingTrust {
  return {
    trusts: () => true,
    client(xff, peer) {
      const chain = [...xff, peer];
      return plainAddress(chain[Math.max(0, chain.length - 1 - hops)] as string);
    },
  };
}

/** The trust an Origin's spec.forwardedHeaders declares. */
export function forwardingTrust(spec: ForwardedHeaders | undefined): ForwardingTrust {
  if (spec === undefined) return NO_ONE;
  if ((spec.trustedProxies ?? []).length > 0) return cidrTrust(spec.trustedProxies ?? []);
  if (spec.trustedHops > 0) return hopsTrust(spec.trustedHops);
  return NO_ONE;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A Forwarded parameter value (RFC 7239 §4): a token, else a quoted string; IPv6 nodes bracketed. */
function forwardedValue(value: string, node = false): string {
  const v = node && isIP(value) === 6 ? `[${value}]` : value;
  return TOKEN.test(v) ? v : `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** This hop's Forwarded element: who sent the request, the Host it asked for, the scheme it used. */
export function forwardedElement(peer: string, host: string | undefined, proto: string): string {
  const parts = [`for=${forwardedValue(peer === '' ? 'unknown' : peer, true)}`];
  if (host !== undefined) parts.push(`host=${forwardedValue(host)}`);
  parts.push(`proto=${proto}`);
  return parts.join(';');
}
