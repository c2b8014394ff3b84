// Requests that abuse hop-by-hop semantics or claim another client, scheme or
// host through forwarding headers. originguard trusts no one by default
// (spec.forwardedHeaders), so every claim is replaced with what it saw.
import { all, forwarded, type HostileCase, must, request } from './case.ts';

const GET = 'GET / HTTP/1.1';
const rightmostIsPeer = must.headerIs(
  'x-forwarded-for',
  (v) => v === undefined || v.split(',').at(-1)?.trim() === '127.0.0.1',
  'the rightmost address must be the peer the proxy saw',
);
const absentOr = (name: string, allowed: string, why: string) =>
  must.headerIs(name, (v) => v === undefined || v === allowed, why);
const absent = (name: string) => must.headerIs(name, (v) => v === undefined, 'a client may not set it');

const hopByHop: HostileCase[] = [
  {
    id: 'connection-host',
    class: 'hop-by-hop',
    title: 'Connection: Host (strip the Host the request was routed by)',
    send: [request(GET, ['Connection: Host'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, must.host('live.test')),
  },
  {
    id: 'connection-xff',
    class: 'hop-by-hop',
    title: 'Connection: X-Forwarded-For (strip the client address the proxy adds)',
    send: [request(GET, ['Connection: X-Forwarded-For'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(
      must.answer,
      must.headerIs('x-forwarded-for', (v) => v !== undefined, 'must be set'),
      rightmostIsPeer,
    ),
  },
  {
    id: 'connection-content-length',
    class: 'hop-by-hop',
    title: 'Connection: Content-Length (strip the framing of a body)',
    send: [request('POST / HTTP/1.1', ['Content-Length: 3', 'Connection: Content-Length'], 'abc')],
    expect: { statuses: [200], forwarded: [forwarded({ line: 'POST / HTTP/1.1', body: 'abc' })] },
    judge: all(must.answer, must.notSmuggle, (o) =>
      o.forwarded.length === 1 && o.forwarded[0]?.body === 'abc' && o.forwarded[0].complete
        ? undefined
        : 'the body did not reach the origin intact',
    ),
  },
  {
    id: 'connection-proxy-headers',
    class: 'hop-by-hop',
    title: 'Connection: Via, CDN-Loop, Forwarded, X-Forwarded-Proto (strip loop detection and provenance)',
    send: [request(GET, ['Connection: Via, CDN-Loop, Forwarded, X-Forwarded-Proto'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(
      must.answer,
      must.headerIs('x-forwarded-proto', (v) => v !== undefined, 'must be set'),
    ),
  },
  {
    id: 'connection-custom',
    class: 'hop-by-hop',
    title: 'Connection: X-Hop removes X-Hop (RFC 9110 §7.6.1), and the Connection header itself',
    send: [request(GET, ['Connection: keep-alive, X-Hop', 'X-Hop: 1', 'Keep-Alive: timeout=5'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: must.answer,
  },
  {
    id: 'proxy-authorization',
    class: 'hop-by-hop',
    title: 'Proxy-Authorization (a credential meant for a proxy) is not passed to the origin',
    send: [request(GET, ['Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA=='])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, must.notCarry('c2VjcmV0OnNlY3JldA==')),
  },
];

const spoofing: HostileCase[] = [
  {
    id: 'xff-spoof',
    class: 'forwarding',
    title: 'X-Forwarded-For: 6.6.6.6 from an untrusted client',
    send: [request(GET, ['X-Forwarded-For: 6.6.6.6'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, rightmostIsPeer),
  },
  {
    id: 'xff-two-lines',
    class: 'forwarding',
    title: 'X-Forwarded-For on two lines',
    send: [request(GET, ['X-Forwarded-For: 6.6.6.6', 'X-Forwarded-For: 7.7.7.7'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, rightmostIsPeer),
  },
  {
    id: 'xfp-spoof',
    class: 'forwarding',
    title: 'X-Forwarded-Proto: https over plain HTTP',
    send: [request(GET, ['X-Forwarded-Proto: https'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, absentOr('x-forwarded-proto', 'http', 'the client came over http')),
  },
  {
    id: 'xfh-spoof',
    class: 'forwarding',
    title: 'X-Forwarded-Host: evil.test',
    send: [request(GET, ['X-Forwarded-Host: evil.test'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, absentOr('x-forwarded-host', 'live.test', 'the client asked for live.test')),
  },
  {
    id: 'forwarded-spoof',
    class: 'forwarding',
    title: 'Forwarded: for=6.6.6.6;host=evil.test;proto=https (RFC 7239)',
    send: [request(GET, ['Forwarded: for=6.6.6.6;host=evil.test;proto=https'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(
      must.answer,
      must.headerIs('forwarded', (v) => v === undefined || !v.includes('6.6.6.6'), 'a client may not set it'),
    ),
  },
  {
    id: 'x-real-ip-spoof',
    class: 'forwarding',
    title: 'X-Real-IP: 6.6.6.6',
    send: [request(GET, ['X-Real-IP: 6.6.6.6'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, absentOr('x-real-ip', '127.0.0.1', 'the client is 127.0.0.1')),
  },
  {
    id: 'true-client-ip-spoof',
    class: 'forwarding',
    title: 'True-Client-IP and CF-Connecting-IP: 6.6.6.6 (CDN client headers)',
    send: [request(GET, ['True-Client-IP: 6.6.6.6', 'CF-Connecting-IP: 6.6.6.6'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, absent('true-client-ip'), absent('cf-connecting-ip')),
  },
  {
    id: 'x-forwarded-port-prefix',
    class: 'forwarding',
    title: 'X-Forwarded-Port: 443 and X-Forwarded-Prefix: /admin',
    send: [request(GET, ['X-Forwarded-Port: 443', 'X-Forwarded-Prefix: /admin'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, absent('x-forwarded-port'), absent('x-forwarded-prefix')),
  },
  {
    id: 'x-original-url',
    class: 'forwarding',
    title: 'X-Original-URL: /admin (a URL override some frameworks obey)',
    send: [request(GET, ['X-Original-URL: /admin', 'X-Rewrite-URL: /admin'])],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, absent('x-original-url'), absent('x-rewrite-url')),
  },
];

export const HEADER_CASES: readonly HostileCase[] = [...hopByHop, ...spoofing];
