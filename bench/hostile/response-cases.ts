// What the origin answers, when it is not a clean HTTP/1.1 response: 1xx before
// the final response, reason phrases in any bytes, and malformed responses. The
// client's request is always a plain GET; the origin closes after answering.

import { all, forwarded, HOST, type HostileCase, must, type Outcome, request } from './case.ts';
import type { Answer } from './recording-origin.ts';
import { statusOf } from './wire.ts';

const GET = request('GET / HTTP/1.1');
const answer = (bytes: string, close = true): Answer[] => [{ bytes, close }];
const ok200 = (head = 'HTTP/1.1 200 OK') => `${head}\r\ncontent-length: 2\r\n\r\nok`;

/** The origin answered with something that cannot be forwarded: 536 and the cause, counted against the origin. */
const invalid = (cause: string) => ({
  statuses: [536],
  forwarded: [forwarded()],
  cause,
  originFailure: true,
});
const refusedAsGatewayError = all(
  must.status((s) => s >= 500, 'a 5xx'),
  must.answer,
);
const delivered = (o: Outcome) => o.exchange.responses.map(statusOf);
const got1xx = (code: number) => (o: Outcome) =>
  delivered(o).includes(code)
    ? undefined
    : `the ${code} did not reach the client (got ${delivered(o).join(', ')})`;
const finalOk = (o: Outcome) => {
  const last = o.exchange.responses.at(-1);
  return last !== undefined && statusOf(last) === 200 && last.body === 'ok' && last.complete
    ? undefined
    : `want the final 200 "ok", got ${delivered(o).join(', ') || 'nothing'}`;
};
const incomplete = (o: Outcome) => {
  const last = o.exchange.responses.at(-1);
  return last === undefined || !last.complete || o.exchange.closed
    ? undefined
    : 'a truncated body reached the client as complete';
};

const informational: HostileCase[] = [
  {
    id: 'early-hints',
    class: 'informational',
    title: '103 Early Hints with a Link, then 200',
    send: [GET],
    origin: answer(`HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\n\r\n${ok200()}`),
    expect: { statuses: [103, 200], forwarded: [forwarded()], body: 'ok' },
    judge: all(finalOk, got1xx(103)),
  },
  {
    id: 'processing',
    class: 'informational',
    title: '102 Processing, then 200',
    send: [GET],
    origin: answer(`HTTP/1.1 102 Processing\r\n\r\n${ok200()}`),
    expect: { statuses: [102, 200], forwarded: [forwarded()], body: 'ok' },
    judge: all(finalOk, got1xx(102)),
  },
  {
    id: 'continue-unsolicited',
    class: 'informational',
    title: 'A 100 Continue nobody asked for, then 200 (RFC 9110 §15.2: a client must parse it)',
    send: [GET],
    origin: answer(`HTTP/1.1 100 Continue\r\n\r\n${ok200()}`),
    expect: { statuses: [100, 200], forwarded: [forwarded()], body: 'ok' },
    judge: finalOk,
  },
  {
    id: 'continue-then-hints',
    class: 'informational',
    title: '100 Continue, 103 Early Hints twice, then 200',
    send: [GET],
    origin: answer(
      `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\n${ok200()}`,
    ),
    expect: { statuses: [100, 103, 103, 200], forwarded: [forwarded()], body: 'ok' },
    judge: all(finalOk, got1xx(103)),
  },
  {
    id: 'hints-to-http10',
    class: 'informational',
    title: '103 Early Hints to an HTTP/1.0 client (RFC 9110 §15.2: it must not get a 1xx)',
    send: [`GET / HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`],
    origin: answer(`HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n${ok200()}`),
    expect: { statuses: [200], forwarded: [forwarded()], body: 'ok' },
    judge: (o) => (delivered(o).some((s) => s < 200) ? 'an HTTP/1.0 client got a 1xx' : finalOk(o)),
  },
];

const reasons: HostileCase[] = [
  {
    id: 'reason-utf8',
    class: 'malformed-response',
    title: 'A reason phrase in UTF-8 (200 成功): valid obs-text, forwarded byte for byte',
    send: [GET],
    origin: answer(ok200('HTTP/1.1 200 \xe6\x88\x90\xe5\x8a\x9f')),
    expect: { statuses: [200], forwarded: [forwarded()], reason: '\xe6\x88\x90\xe5\x8a\x9f', body: 'ok' },
    judge: finalOk,
  },
  {
    id: 'reason-latin1',
    class: 'malformed-response',
    title: 'A reason phrase in Latin-1 (200 café)',
    send: [GET],
    origin: answer(ok200('HTTP/1.1 200 caf\xe9')),
    expect: { statuses: [200], forwarded: [forwarded()], reason: 'OK', body: 'ok' },
    judge: finalOk,
  },
  {
    id: 'reason-empty',
    class: 'malformed-response',
    title: 'A status line without a reason phrase ("HTTP/1.1 200 ")',
    send: [GET],
    origin: answer(ok200('HTTP/1.1 200 ')),
    expect: { statuses: [200], forwarded: [forwarded()], reason: 'OK', body: 'ok' },
    judge: finalOk,
  },
];

const malformed: HostileCase[] = [
  {
    id: 'status-4-digits',
    class: 'malformed-response',
    title: 'A four-digit status code (HTTP/1.1 2000 OK)',
    send: [GET],
    origin: answer(ok200('HTTP/1.1 2000 OK')),
    expect: invalid('http_protocol_error'),
    judge: all(refusedAsGatewayError, must.notDeliver('2000')),
  },
  {
    id: 'status-line-garbage',
    class: 'malformed-response',
    title: 'Not a status line (HTTP/1.1 OK 200)',
    send: [GET],
    origin: answer(ok200('HTTP/1.1 OK 200')),
    expect: invalid('http_protocol_error'),
    judge: refusedAsGatewayError,
  },
  {
    id: 'not-http',
    class: 'malformed-response',
    title: 'Another protocol on the port (an SSH banner)',
    send: [GET],
    origin: answer('SSH-2.0-OpenSSH_9.2\r\n'),
    expect: invalid('http_protocol_error'),
    judge: all(refusedAsGatewayError, must.notDeliver('SSH-2.0')),
  },
  {
    id: 'http09-response',
    class: 'malformed-response',
    title: 'An HTTP/0.9 answer (a body without a status line)',
    send: [GET],
    origin: answer('<html>hello</html>\r\n'),
    expect: invalid('http_protocol_error'),
    judge: all(refusedAsGatewayError, must.notDeliver('<html>hello')),
  },
  {
    id: 'response-cl-te',
    class: 'malformed-response',
    title: 'Content-Length and Transfer-Encoding: chunked in one response',
    send: [GET],
    origin: answer(
      'HTTP/1.1 200 OK\r\ncontent-length: 40\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    ),
    expect: invalid('http_protocol_error'),
    // RFC 9112 §6.3 lets a proxy refuse it, or forward it framed by the chunks without the Content-Length.
    judge: (o) =>
      refusedAsGatewayError(o) === undefined
        ? undefined
        : (finalOk(o) ?? must.notDeliver('content-length: 40')(o)),
  },
  {
    id: 'response-cl-twice',
    class: 'malformed-response',
    title: 'Content-Length twice with different values',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 20\r\n\r\nok'),
    expect: invalid('http_protocol_error'),
    judge: refusedAsGatewayError,
  },
  {
    id: 'response-cl-invalid',
    class: 'malformed-response',
    title: 'Content-Length: abc',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\nok'),
    expect: invalid('http_protocol_error'),
    judge: refusedAsGatewayError,
  },
  {
    id: 'response-bare-cr',
    class: 'malformed-response',
    title: 'A bare CR inside a response header value',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\nx-a: a\rSet-Cookie: x=1\r\ncontent-length: 2\r\n\r\nok'),
    expect: invalid('http_protocol_error'),
    judge: all(refusedAsGatewayError, must.notDeliver('Set-Cookie')),
  },
  {
    id: 'response-obs-fold',
    class: 'malformed-response',
    title: 'A folded response header',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\nx-a: 1\r\n Set-Cookie: x=1\r\ncontent-length: 2\r\n\r\nok'),
    expect: invalid('http_protocol_error'),
    judge: all(must.answer, must.notDeliver('\r\n Set-Cookie')),
  },
  {
    id: 'response-name-space',
    class: 'malformed-response',
    title: 'A response header name with a space',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\nBad Header: x\r\ncontent-length: 2\r\n\r\nok'),
    expect: invalid('http_protocol_error'),
    judge: all(must.answer, must.notDeliver('Bad Header')),
  },
  {
    id: 'response-nul',
    class: 'malformed-response',
    title: 'A NUL byte in a response header value',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\nx-a: a\x00b\r\ncontent-length: 2\r\n\r\nok'),
    expect: invalid('http_protocol_error'),
    judge: all(must.answer, must.notDeliver('a\x00b')),
  },
  {
    id: 'response-headers-too-large',
    class: 'malformed-response',
    title: '70 KB of response headers',
    send: [GET],
    origin: answer(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}\r\ncontent-length: 2\r\n\r\nok`),
    expect: invalid('http_response_header_section_size'),
    judge: refusedAsGatewayError,
  },
  {
    id: 'response-te-gzip',
    class: 'malformed-response',
    title: 'Transfer-Encoding: gzip (a coding the proxy does not decode)',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n\x1f\x8b\x08\x00garbage'),
    expect: invalid('http_response_transfer_coding'),
    judge: all(must.answer, must.notDeliver('\x1f\x8b\x08')),
  },
  {
    id: 'unsolicited-101',
    class: 'malformed-response',
    title: '101 Switching Protocols to a request that asked for no upgrade',
    send: [GET],
    origin: answer(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      false,
    ),
    expect: invalid('http_protocol_error'),
    judge: all(
      must.answer,
      must.status((s) => s !== 101, 'no 101'),
    ),
  },
  {
    id: 'response-poisoning',
    class: 'malformed-response',
    title: 'Bytes after the declared body, shaped as a second response, left on a kept-alive connection',
    send: [GET, { waitFor: /\r\n\r\nok/ }, GET],
    finals: 2,
    origin: [{ bytes: `${ok200()}HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\npoisoned` }, { bytes: ok200() }],
    expect: { statuses: [200, 200], forwarded: [forwarded(), forwarded()], body: 'ok' },
    judge: all(must.notDeliver('poisoned'), finalOk),
  },
  {
    id: 'no-content-with-body',
    class: 'malformed-response',
    title: '204 No Content with a body, then another request on the connection',
    send: [GET, { waitFor: /204/ }, GET],
    finals: 2,
    origin: [{ bytes: 'HTTP/1.1 204 No Content\r\ncontent-length: 8\r\n\r\npoisoned' }, { bytes: ok200() }],
    expect: { statuses: [204, 200], forwarded: [forwarded(), forwarded()], body: 'ok' },
    judge: all(must.notDeliver('poisoned'), finalOk),
  },
  {
    id: 'truncated-body',
    class: 'malformed-response',
    title: 'The connection closes before the declared body is complete',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nok'),
    expect: { statuses: [200], forwarded: [forwarded()], closed: true, originFailure: true },
    judge: incomplete,
  },
  {
    id: 'bad-chunk',
    class: 'malformed-response',
    title: 'A chunked body with an invalid chunk size after the first chunk',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n'),
    expect: { statuses: [200], forwarded: [forwarded()], closed: true, originFailure: true },
    judge: incomplete,
  },
  {
    id: 'truncated-head',
    class: 'malformed-response',
    title: 'The connection closes in the middle of the response head',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ncontent-le'),
    expect: invalid('connection_terminated'),
    judge: refusedAsGatewayError,
  },
  {
    id: 'close-delimited',
    class: 'malformed-response',
    title: 'A body delimited by the connection closing (valid, if old-fashioned)',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nok'),
    expect: { statuses: [200], forwarded: [forwarded()], body: 'ok' },
    judge: finalOk,
  },
  {
    id: 'set-cookie-twice',
    class: 'malformed-response',
    title: 'Two Set-Cookie headers: forwarded as two lines, never folded into one',
    send: [GET],
    origin: answer('HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 2\r\n\r\nok'),
    expect: { statuses: [200], forwarded: [forwarded()], body: 'ok' },
    judge: (o) =>
      /\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n/i.test(o.exchange.bytes)
        ? finalOk(o)
        : 'Set-Cookie lines were changed',
  },
];

export const RESPONSE_CASES: readonly HostileCase[] = [...informational, ...reasons, ...malformed];
