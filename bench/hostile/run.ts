// Runs hostile-input cases against a proxy listening on loopback, in front of a
// RecordingOrigin, and compares what happened with what a case expects. Used by
// the test suite (originguard in-process) and by compare.ts (originguard's built
// bundle and nginx side by side).
import { type HostileCase, type Outcome, request } from './case.ts';
import { exchange } from './client.ts';
import { HEADER_CASES } from './header-cases.ts';
import { OK_ANSWER, type RecordingOrigin } from './recording-origin.ts';
import { REQUEST_CASES } from './request-cases.ts';
import { RESPONSE_CASES } from './response-cases.ts';
import { ROUTING_CASES } from './routing-cases.ts';
import { header, type Message, statusOf } from './wire.ts';

/** A plain GET, sent after each case: the proxy must still answer it 200. */
export const GOOD: HostileCase = {
  id: 'good',
  class: 'smuggling',
  title: 'a plain GET',
  send: [request('GET /after HTTP/1.1')],
  expect: { statuses: [200], forwarded: [] },
  judge: () => undefined,
};

export const CASES: readonly HostileCase[] = [
  ...REQUEST_CASES,
  ...HEADER_CASES,
  ...ROUTING_CASES,
  ...RESPONSE_CASES,
];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends the case's bytes to the proxy on `port` and records what the client and the origin saw. */
export async function runCase(c: HostileCase, port: number, origin: RecordingOrigin): Promise<Outcome> {
  const before = origin.recorded.length;
  const answers = c.origin ?? [];
  origin.answerWith((_req, n) => answers[n] ?? answers.at(-1) ?? OK_ANSWER);
  const ex = await exchange(port, c.send, {
    finals: c.finals ?? 1,
    ...(c.methods ? { methods: c.methods } : {}),
  });
  // What the proxy sends the origin after answering (or on closing) lands a moment later.
  await sleep(30);
  return { exchange: ex, forwarded: origin.recorded.slice(before) };
}

/** The error parameter of a Proxy-Status header, if any. */
function proxyStatusError(value: string | undefined): string | undefined {
  return value === undefined ? undefined : /;\s*error=([\w-]+)/.exec(value)?.[1];
}

const show = (s: string) => JSON.stringify(s.length > 400 ? `${s.slice(0, 400)}…` : s);

function forwardedMismatches(want: readonly string[], got: readonly string[]): string[] {
  const out: string[] = [];
  if (got.length !== want.length) out.push(`origin received ${got.length} request(s), want ${want.length}`);
  want.forEach((w, i) => {
    const g = got[i];
    if (g !== undefined && g !== w)
      out.push(`request ${i + 1} at the origin:\n  got  ${show(g)}\n  want ${show(w)}`);
  });
  return out;
}

function lastResponseMismatches(e: HostileCase['expect'], last: Message | undefined): string[] {
  const out: string[] = [];
  if (e.reason !== undefined) {
    const reason = last?.start.split(' ').slice(2).join(' ');
    if (reason !== e.reason) out.push(`reason phrase ${show(reason ?? '')}, want ${show(e.reason)}`);
  }
  const body = last?.body ?? '';
  if (typeof e.body === 'string' && body !== e.body) out.push(`body ${show(body)}, want ${show(e.body)}`);
  if (e.body instanceof RegExp && !e.body.test(body)) out.push(`body ${show(body)} does not match ${e.body}`);
  const cause = last === undefined ? undefined : proxyStatusError(header(last, 'proxy-status'));
  if (cause !== e.cause) out.push(`Proxy-Status error ${cause ?? 'none'}, want ${e.cause ?? 'none'}`);
  return out;
}

/** Where the outcome differs from what originguard must do; empty when it does exactly that. */
export function mismatches(c: HostileCase, o: Outcome, vars: { cdnId: string }): string[] {
  const e = c.expect;
  const out: string[] = [];
  const statuses = o.exchange.responses.map(statusOf);
  if (statuses.join(',') !== e.statuses.join(','))
    out.push(`statuses ${statuses.join(',') || 'none'}, want ${e.statuses.join(',') || 'none'}`);
  const want = e.forwarded.map((f) => f.replaceAll('{cdn}', vars.cdnId));
  out.push(
    ...forwardedMismatches(
      want,
      o.forwarded.map((r) => r.raw),
    ),
  );
  out.push(...lastResponseMismatches(e, o.exchange.responses.at(-1)));
  if (e.closed !== undefined && o.exchange.closed !== e.closed)
    out.push(e.closed ? 'the connection stayed open, want it closed' : 'the connection was closed');
  return out;
}

/** A short account of the outcome for a table cell: statuses the client got, and whether the origin saw the request. */
export function summary(o: Outcome): string {
  const statuses = o.exchange.responses.map(statusOf).map((s) => (Number.isNaN(s) ? '?' : String(s)));
  const client = statuses.length > 0 ? statuses.join(' ') : o.exchange.closed ? 'closed' : 'no answer';
  const n = o.forwarded.length;
  return n === 0 ? client : `${client} (${n === 1 ? 'forwarded' : `${n} forwarded`})`;
}
