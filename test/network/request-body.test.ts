// Request bodies received before forwarding (spec.request.bodyBufferBytes) within
// one memory budget per sidecar (--request-buffer-memory): a slow client holds
// no origin connection while its small body trickles in; a body that does not
// fit is streamed, as before.
import { describe, expect, it } from 'vitest';
import { exchange, type Part } from '../../bench/hostile/client.ts';
import { RecordingOrigin } from '../../bench/hostile/recording-origin.ts';
import { startSidecar } from '../support/run-sidecar.ts';

/** A POST whose body's first 10 bytes come at once and the rest after `pauseMs`. */
function slowPost(path: string, size: number, pauseMs: number): Part[] {
  const body = 'b'.repeat(size);
  return [
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n${body.slice(0, 10)}`,
    { pauseMs },
    body.slice(10),
  ];
}

async function post(port: number, origin: RecordingOrigin, path: string, size: number, pauseMs: number) {
  const ex = await exchange(port, slowPost(path, size, pauseMs), { finals: 1 });
  const at = origin.recorded.find((r) => r.start.startsWith(`POST ${path} `));
  if (at === undefined) throw new Error(`${path} never reached the origin`);
  expect(at.body).toHaveLength(size);
  expect(ex.responses[0]?.start).toBe('HTTP/1.1 200 OK');
  // Positive: the origin saw the request only once the client had sent all of it.
  return { heldBackMs: at.firstByteAt - ex.lastWriteAt };
}

describe('request bodies', () => {
  it('receives a small body before forwarding it, and streams a larger one', async () => {
    await using origin = await RecordingOrigin.start();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: origin.port },
      request: { bodyBufferBytes: 100 },
    });
    expect((await post(sc.port, origin, '/small', 100, 300)).heldBackMs).toBeGreaterThanOrEqual(0);
    expect((await post(sc.port, origin, '/large', 101, 300)).heldBackMs).toBeLessThan(-200);
  });

  it('streams once the sidecar-wide budget is in use, and buffers again once it is given back', async () => {
    await using origin = await RecordingOrigin.start();
    await using sc = await startSidecar(
      { upstream: { host: '127.0.0.1', port: origin.port }, request: { bodyBufferBytes: 100 } },
      { requestBufferMemory: 150 },
    );
    const first = post(sc.port, origin, '/first', 100, 600);
    await new Promise((r) => setTimeout(r, 100));
    // 100 of the 150 bytes are held for /first: /second's 100 do not fit.
    const second = await post(sc.port, origin, '/second', 100, 300);
    expect(second.heldBackMs).toBeLessThan(-200);
    expect((await first).heldBackMs).toBeGreaterThanOrEqual(0);
    expect((await post(sc.port, origin, '/third', 100, 300)).heldBackMs).toBeGreaterThanOrEqual(0);
  });

  it('buffers nothing with bodyBufferBytes: 0', async () => {
    await using origin = await RecordingOrigin.start();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: origin.port },
      request: { bodyBufferBytes: 0 },
    });
    expect((await post(sc.port, origin, '/streamed', 20, 300)).heldBackMs).toBeLessThan(-200);
  });
});
