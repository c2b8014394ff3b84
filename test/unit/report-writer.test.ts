import { Value } from '@sinclair/typebox/value';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OriginReport } from '../../src/api/report.ts';
import { OriginReportStatus, reportLabels } from '../../src/api/report.ts';
import { type HealthSnapshot, OriginHealth } from '../../src/sidecar/health.ts';
import type { PodIdentity } from '../../src/sidecar/pod-identity.ts';
import { buildReport, ReportWriter, type ServedOrigin } from '../../src/sidecar/report-writer.ts';
import type { Failure } from '../../src/upstream/failure.ts';
import { PRODUCT_VERSION } from '../../src/version.ts';

const identity: PodIdentity = {
  podName: 'shop-edge-0',
  namespace: 'shop',
  podUid: 'pod-uid-0',
  serviceAccount: 'default',
};
const shop: ServedOrigin = { key: 'shop/shop', name: 'shop', uid: 'origin-uid', generation: 3 };

const refused = (): Failure =>
  ({
    cause: 'connection_refused',
    phase: 'connect',
    code: 'ECONNREFUSED',
    address: '127.0.0.1',
    attempts: [{ address: '127.0.0.1', port: 3000, cause: 'connection_refused', phase: 'connect' }],
    elapsedMs: 2.4,
  }) as unknown as Failure;

function unreachable(): HealthSnapshot {
  const h = new OriginHealth('shop/shop');
  h.onRequest();
  h.onReachable();
  h.onRequest();
  h.onFailure(refused(), 531, true);
  return h.snapshot();
}

describe('buildReport', () => {
  it('reports an unreachable origin with its cause, phase, hint and counters, owned by the pod', () => {
    const now = new Date('2026-11-23T19:00:05.000Z');
    const snapshot = unreachable();
    const report = buildReport(snapshot, identity, shop, now);
    expect(report.metadata).toEqual({
      name: 'shop-shop--edge--0',
      namespace: 'shop',
      labels: reportLabels('shop', 'shop-edge-0'),
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Pod',
          name: 'shop-edge-0',
          uid: 'pod-uid-0',
          controller: false,
          blockOwnerDeletion: false,
        },
      ],
    });
    expect(report.status).toEqual({
      originName: 'shop',
      originUID: 'origin-uid',
      podName: 'shop-edge-0',
      podUID: 'pod-uid-0',
      originGeneration: 3,
      health: 'Unreachable',
      source: 'Traffic',
      cause: 'connection_refused',
      phase: 'connect',
      hint: snapshot.hint,
      requests: 2,
      failures: 1,
      failuresByCause: { connection_refused: 1 },
      lastFailure: snapshot.lastFailure,
      lastTransitionTime: snapshot.lastTransitionTime,
      heartbeatTime: '2026-11-23T19:00:05.000Z',
      sidecarVersion: PRODUCT_VERSION,
    });
    expect(report.status.lastFailure).toMatchObject({ address: '127.0.0.1:3000', errno: 'ECONNREFUSED' });
    expect([...Value.Errors(OriginReportStatus, report.status)]).toEqual([]);
  });

  it('leaves cause, phase and hint out once reachable, and keeps the counters and last failure', () => {
    const h = new OriginHealth('shop/shop');
    h.onFailure(refused(), 531, true);
    h.onReachable();
    const report = buildReport(
      h.snapshot(),
      identity,
      { key: 'shop/shop', name: 'shop', generation: 1 },
      new Date(),
    );
    expect(report.status.health).toBe('Reachable');
    expect(report.status).not.toHaveProperty('cause');
    expect(report.status).not.toHaveProperty('phase');
    expect(report.status).not.toHaveProperty('hint');
    expect(report.status).not.toHaveProperty('originUID');
    expect(report.status.lastFailure?.cause).toBe('connection_refused');
    expect([...Value.Errors(OriginReportStatus, report.status)]).toEqual([]);
  });

  it('carries the node, what set the health (a check) and the checks, when there are', () => {
    const h = new OriginHealth('shop/shop');
    h.onCheck({
      ok: false,
      failure: refused(),
      statusCode: 531,
      decision: 'Unreachable',
      summary: '127.0.0.1:3000 refuses connections',
    });
    const report = buildReport(h.snapshot(), { ...identity, nodeName: 'node-a' }, shop, new Date());
    expect(report.status).toMatchObject({
      nodeName: 'node-a',
      health: 'Unreachable',
      source: 'Probe',
      cause: 'connection_refused',
      requests: 0,
      failures: 0,
      lastFailure: { cause: 'connection_refused', source: 'Probe', statusCode: 531 },
      healthCheck: {
        checks: 1,
        failures: 1,
        lastResult: 'Failure',
        consecutive: 1,
        cause: 'connection_refused',
        summary: '127.0.0.1:3000 refuses connections',
      },
    });
    expect([...Value.Errors(OriginReportStatus, report.status)]).toEqual([]);
  });
});

describe('ReportWriter scheduling', () => {
  let calls: { at: number; op: 'apply' | 'delete'; report?: OriginReport; name?: string }[];
  let failing: boolean;
  let gate: Promise<void>;
  let health: OriginHealth;
  let writer: ReportWriter;
  const t0 = Date.parse('2026-11-23T19:00:00.000Z');

  beforeEach(() => {
    vi.useFakeTimers({ now: t0 });
    calls = [];
    failing = false;
    gate = Promise.resolve();
    health = new OriginHealth('shop/shop');
    writer = new ReportWriter({
      identity,
      logger: pino({ level: 'silent' }),
      snapshot: (key) => (key === 'shop/shop' ? health.snapshot() : undefined),
      random: () => 0.5,
      api: {
        async apply(report) {
          calls.push({ at: Date.now() - t0, op: 'apply', report });
          if (failing) throw new Error('cannot reach the API server: ECONNREFUSED');
        },
        async delete(name) {
          calls.push({ at: Date.now() - t0, op: 'delete', name });
          await gate;
          if (failing) throw new Error('cannot reach the API server: ECONNREFUSED');
        },
      },
    });
    health.on('change', () => writer.changed('shop/shop'));
  });
  afterEach(async () => {
    await writer.stop();
    vi.useRealTimers();
  });

  const times = () => calls.map((c) => c.at);

  it('writes once when it starts serving an Origin, and again only when the generation changes', async () => {
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(60_000);
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(times()).toEqual([0]);
    writer.sync([{ ...shop, generation: 4 }]);
    await vi.advanceTimersByTimeAsync(10);
    expect(times()).toEqual([0, 120_000]);
    expect(calls[1]?.report?.status.originGeneration).toBe(4);
  });

  it('coalesces health changes within 250 ms into one write of the latest state, never one per request', async () => {
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(1000);
    for (let i = 0; i < 1000; i++) {
      health.onRequest();
      health.onFailure(refused(), 531, true);
    }
    await vi.advanceTimersByTimeAsync(100);
    health.onReachable();
    health.onFailure({ ...refused(), cause: 'connection_timeout' } as Failure, 531, true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(times()).toEqual([0, 1250]);
    expect(calls[1]?.report?.status).toMatchObject({
      health: 'Unreachable',
      cause: 'connection_timeout',
      requests: 1000,
      failures: 1001,
    });
  });

  it('rewrites the report every 30 s while the origin is unreachable, and stops once it is reachable', async () => {
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(10);
    health.onFailure(refused(), 531, true);
    await vi.advanceTimersByTimeAsync(95_000);
    expect(times()).toEqual([0, 260, 30_260, 60_260, 90_260]);
    expect(calls.at(-1)?.report?.status.heartbeatTime).toBe(new Date(t0 + 90_260).toISOString());
    health.onReachable();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(times()).toEqual([0, 260, 30_260, 60_260, 90_260, 95_260]);
  });

  it('retries a failed write with backoff from 1 s to 30 s, then writes the latest counters when the API is back', async () => {
    failing = true;
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(10);
    // Changes while writes fail add no attempts: the retry sends the latest state.
    health.onFailure(refused(), 531, true);
    health.onReachable();
    await vi.advanceTimersByTimeAsync(100_000);
    expect(times()).toEqual([0, 1000, 3000, 7000, 15_000, 31_000, 61_000, 91_000]);
    for (let i = 0; i < 5; i++) health.onRequest();
    failing = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(times().at(-1)).toBe(121_000);
    expect(calls.at(-1)?.report?.status).toMatchObject({ health: 'Reachable', requests: 5, failures: 1 });
    expect(writer.state()).toEqual([
      expect.objectContaining({ origin: 'shop/shop', failures: 0, want: 'present' }),
    ]);
  });

  it('retries at once when told the API server answers again', async () => {
    failing = true;
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(writer.state()[0]).toMatchObject({
      failures: 5,
      lastError: 'cannot reach the API server: ECONNREFUSED',
    });
    failing = false;
    writer.retryNow();
    await vi.advanceTimersByTimeAsync(1);
    expect(times()).toEqual([0, 1000, 3000, 7000, 15_000, 20_000]);
    expect(writer.state()[0]?.failures).toBe(0);
  });

  it('deletes the report of an Origin no longer served, retrying until it is gone', async () => {
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(10);
    failing = true;
    writer.sync([]);
    await vi.advanceTimersByTimeAsync(500);
    failing = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.map((c) => `${c.at} ${c.op}`)).toEqual(['0 apply', '10 delete', '1010 delete']);
    expect(calls[1]?.name).toBe('shop-shop--edge--0');
    expect(writer.state()).toEqual([]);
  });

  it('writes the report again when the Origin selects the pod again while its deletion is in flight', async () => {
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(10);
    let release: () => void = () => {};
    gate = new Promise((resolve) => {
      release = resolve;
    });
    writer.sync([]);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.op)).toEqual(['apply', 'delete']);
    writer.sync([shop]);
    release();
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.op)).toEqual(['apply', 'delete', 'apply']);
    expect(writer.state()).toEqual([expect.objectContaining({ want: 'present', failures: 0 })]);
  });

  it('writes nothing after stop()', async () => {
    writer.sync([shop]);
    await vi.advanceTimersByTimeAsync(10);
    health.onFailure(refused(), 531, true);
    await writer.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(times()).toEqual([0]);
  });
});
