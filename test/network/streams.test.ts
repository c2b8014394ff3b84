// Long-lived responses through a real sidecar: Server-Sent Events and chunked
// streams flow chunk by chunk as the origin writes them; timeouts.response
// bounds only the wait for the first byte, timeouts.streamIdle each silence after it.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startSidecar } from '../support/run-sidecar.ts';

interface SseOrigin {
  readonly port: number;
  /** performance.now() when each event was written. */
  readonly sent: number[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** An SSE origin: headers at once, then one event after each gap; ends after the last unless `hang`. */
async function startSseOrigin(gapsMs: readonly number[], hang = false): Promise<SseOrigin> {
  const sent: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    let i = 0;
    const next = () => {
      if (i === gapsMs.length) {
        if (!hang) res.end();
        return;
      }
      const t = setTimeout(() => {
        timers.delete(t);
        sent.push(performance.now());
        res.write(`id: ${i}\ndata: event ${i}\n\n`);
        i++;
        next();
      }, gapsMs[i]);
      timers.add(t);
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sent,
    async [Symbol.asyncDispose]() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Reads an event stream; resolves with each event's arrival time and how the stream ended. */
async function readEvents(url: string): Promise<{ events: { data: string; at: number }[]; error?: string }> {
  const r = await request(url, { headers: { accept: 'text/event-stream' } });
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-type']).toBe('text/event-stream');
  const events: { data: string; at: number }[] = [];
  let buffered = '';
  try {
    for await (const chunk of r.body) {
      buffered += (chunk as Buffer).toString();
      let end = buffered.indexOf('\n\n');
      while (end >= 0) {
        const data = /^data: (.*)$/m.exec(buffered.slice(0, end))?.[1] ?? '';
        events.push({ data, at: performance.now() });
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf('\n\n');
      }
    }
  } catch (err) {
    return { events, error: (err as Error).message };
  }
  return { events };
}

describe('streams', () => {
  it('keeps an SSE stream with gaps longer than timeouts.response flowing, each event written as it comes', async () => {
    await using o = await startSseOrigin([0, 800, 800, 800]);
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      timeouts: { response: '300ms', streamIdle: '1500ms' },
    });
    const { events, error } = await readEvents(`${sc.url}/events`);
    expect(error).toBeUndefined();
    expect(events.map((e) => e.data)).toEqual(['event 0', 'event 1', 'event 2', 'event 3']);
    // Nothing held back to fill a buffer: each event reaches the client right after the origin wrote it.
    for (const [i, e] of events.entries()) expect(e.at - (o.sent[i] as number)).toBeLessThan(200);
    const text = await sc.metrics.registry.metrics();
    expect(text).not.toContain('originguard_upstream_failures_total{');
  });

  it('closes a stream silent for longer than timeouts.streamIdle, a failure that leaves the origin Reachable', async () => {
    await using o = await startSseOrigin([0], true);
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      timeouts: { response: '300ms', streamIdle: '1500ms' },
    });
    const { events, error } = await readEvents(`${sc.url}/events`);
    const cut = performance.now();
    expect(events.map((e) => e.data)).toEqual(['event 0']);
    expect(error).toBeDefined();
    const silence = cut - (o.sent[0] as number);
    expect(silence).toBeGreaterThanOrEqual(1490);
    expect(silence).toBeLessThan(3000);
    const text = await sc.metrics.registry.metrics();
    expect(text).toContain(
      'originguard_upstream_failures_total{origin="test/web",cause="http_response_timeout",phase="response"} 1',
    );
    expect(sc.sidecar.health()[0]?.state).toBe('Reachable');
    expect(sc.logs.find((l) => l.cause === 'http_response_timeout')).toMatchObject({ status: 200 });
  });

  it('ends a stream whose client stops reading, and counts nothing against the origin', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let originSawClose = false;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.on('close', () => {
        originSawClose = true;
      });
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await using sc = await startSidecar({
        upstream: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
        timeouts: { streamIdle: '500ms' },
      });
      // A client that never reads: the sockets' buffers fill and the sidecar waits on it.
      const slow = net.connect({ port: sc.port, host: '127.0.0.1' });
      slow.on('error', () => {});
      slow.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      slow.pause();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      slow.destroy();
      expect(originSawClose).toBe(true);
      const text = await sc.metrics.registry.metrics();
      expect(text).not.toContain('originguard_upstream_failures_total{');
      expect(sc.sidecar.health()[0]?.state).toBe('Reachable');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
