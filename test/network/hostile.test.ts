// The hostile-input battery (bench/hostile/) against a real sidecar on loopback:
// for every case, what reaches the origin byte for byte and what the client
// gets, that the sidecar keeps serving, and that the origin's health stays
// true: nothing a client does counts as an origin failure, a malformed
// response counts as one without making the origin look unreachable.
// `npm run hostile:compare` runs the same cases against nginx as well.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingOrigin } from '../../bench/hostile/recording-origin.ts';
import { CASES, GOOD, mismatches, runCase } from '../../bench/hostile/run.ts';
import { header } from '../../bench/hostile/wire.ts';
import { type RunningSidecar, startSidecar } from '../support/run-sidecar.ts';

describe('hostile and malformed traffic', () => {
  let origin: RecordingOrigin;
  let sc: RunningSidecar;
  let cdnId = '';

  const health = () => {
    const [h] = sc.sidecar.health();
    if (h === undefined) throw new Error('no origin served');
    return h;
  };
  const upstreamFailures = async () =>
    (await sc.metrics.upstreamFailures.get()).values.reduce((n, v) => n + v.value, 0);

  beforeAll(async () => {
    origin = await RecordingOrigin.start();
    sc = await startSidecar({ upstream: { host: '127.0.0.1', port: origin.port }, hosts: ['live.test'] });
    const first = await runCase(GOOD, sc.port, origin);
    cdnId = header(first.forwarded[0] ?? { headers: [] }, 'cdn-loop') ?? '';
    expect(cdnId).toMatch(/^originguard-[0-9a-f]{12}$/);
  });

  afterAll(async () => {
    await sc?.close();
    await origin?.close();
  });

  for (const c of CASES) {
    it(`${c.class} / ${c.id}: ${c.title}`, async () => {
      const before = { failures: health().failures, metric: await upstreamFailures() };
      const outcome = await runCase(c, sc.port, origin);
      expect(mismatches(c, outcome, { cdnId }), `originguard's behaviour for ${c.id}`).toEqual([]);
      expect(c.judge(outcome), `the property for ${c.id}`).toBeUndefined();

      const after = health();
      expect(
        after.state,
        'a client, or one malformed answer, never makes the origin look unreachable',
      ).not.toBe('Unreachable');
      expect(after.ejected).toBe(false);
      if (c.expect.originFailure === true) {
        expect(after.failures).toBe(before.failures + 1);
      } else {
        expect(after.failures, 'nothing the client did counts against the origin').toBe(before.failures);
        expect(await upstreamFailures()).toBe(before.metric);
      }
      // The sidecar keeps serving.
      const next = await runCase(GOOD, sc.port, origin);
      expect(next.exchange.responses.map((r) => r.start.split(' ')[1])).toEqual(['200']);
    });
  }

  it('leaves the origin Reachable, its failures only the malformed responses', () => {
    const h = health();
    expect(h.state).toBe('Reachable');
    const malformed = CASES.filter((c) => c.expect.originFailure === true).length;
    expect(h.failures).toBe(malformed);
    for (const cause of Object.keys(h.failuresByCause))
      expect(cause).toMatch(/^(http_|connection_terminated)/);
  });
});
