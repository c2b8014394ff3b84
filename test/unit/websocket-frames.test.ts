// The frame-boundary follower that lets the sidecar put a Close frame between two
// frames of a tunnel it never re-frames, checked against random frame streams cut
// into random chunks, and the Close frames it builds checked with ws's own parser.
import type { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { closeFrame, FrameBoundaries, GOING_AWAY } from '../../src/sidecar/websocket-frames.ts';

/** One frame's bytes: header (7-, 16- or 64-bit length, optional mask) and payload. */
function frame(opcode: number, length: number, masked: boolean): Buffer {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(length, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(length), 2);
  return Buffer.concat([head, Buffer.alloc(length, 0x5a)]);
}

const frameSpec = fc.record({
  opcode: fc.constantFrom(0x0, 0x1, 0x2, 0x9, 0xa),
  length: fc.oneof(fc.integer({ min: 0, max: 125 }), fc.integer({ min: 126, max: 70_000 })),
  masked: fc.boolean(),
});

/** Offsets where each frame of a stream ends. */
function frameEnds(frames: readonly Buffer[]): number[] {
  const ends: number[] = [];
  let offset = 0;
  for (const f of frames) {
    offset += f.length;
    ends.push(offset);
  }
  return ends;
}

/** Splits a buffer at the given cut points (sorted, deduplicated). */
function chunks(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, buf.length]) {
    if (p > from) out.push(buf.subarray(from, p));
    from = Math.max(from, p);
  }
  return out;
}

describe('FrameBoundaries', () => {
  it('is at a boundary exactly where a frame ends, however the stream is cut', () => {
    fc.assert(
      fc.property(fc.array(frameSpec, { minLength: 1, maxLength: 12 }), fc.array(fc.nat()), (specs, cuts) => {
        const frames = specs.map((s) => frame(s.opcode, s.length, s.masked));
        const ends = new Set(frameEnds(frames));
        const stream = Buffer.concat(frames);
        const f = new FrameBoundaries();
        let at = 0;
        for (const c of chunks(stream, cuts)) {
          // Byte by byte within a chunk would be slow for 70 KB frames: check at chunk ends.
          expect(f.advance(c)).toBe(c.length);
          at += c.length;
          expect(f.atBoundary).toBe(ends.has(at));
        }
        expect(f.atBoundary).toBe(true);
      }),
    );
  });

  it('stops at the next boundary when asked, never in the middle of a frame', () => {
    fc.assert(
      fc.property(
        fc.array(frameSpec, { minLength: 2, maxLength: 8 }),
        fc.array(fc.nat()),
        fc.nat(),
        (specs, cuts, stopAfter) => {
          const frames = specs.map((s) => frame(s.opcode, s.length, s.masked));
          const stream = Buffer.concat(frames);
          // The start of the stream is a boundary too.
          const ends = [0, ...frameEnds(frames)];
          const f = new FrameBoundaries();
          const parts = chunks(stream, cuts);
          const stopChunk = stopAfter % parts.length;
          const stopFrom = parts.slice(0, stopChunk).reduce((n, c) => n + c.length, 0);
          let at = 0;
          for (const [i, c] of parts.entries()) {
            if (i < stopChunk) {
              f.advance(c);
              at += c.length;
              continue;
            }
            const n = f.advance(c, true);
            at += n;
            if (n < c.length || f.atBoundary) {
              // Stopped: exactly at the first frame end at or after where the chunk began.
              expect(f.atBoundary).toBe(true);
              expect(ends).toContain(at);
              expect(at).toBe(ends.find((e) => e >= stopFrom));
              return;
            }
          }
          expect(at).toBe(stream.length);
        },
      ),
    );
  });

  it('notices a Close frame passing, so that no second one is sent', () => {
    const f = new FrameBoundaries();
    f.advance(Buffer.concat([frame(0x1, 5, false), frame(0x2, 300, true)]));
    expect(f.closeSeen).toBe(false);
    f.advance(closeFrame(1000, 'bye'));
    expect(f.closeSeen).toBe(true);
    expect(f.atBoundary).toBe(true);
  });
});

/** ws's frame parser (exported by ws, not typed by @types/ws). */
const Receiver = (
  ws as unknown as {
    Receiver: new (o: { isServer: boolean }) => EventEmitter & { write(b: Buffer): void };
  }
).Receiver;

describe('closeFrame', () => {
  /** Parses frames with ws's own receiver; resolves with the Close code and reason. */
  function parse(bytes: Buffer, isServer: boolean): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      const r = new Receiver({ isServer });
      r.on('conclude', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
      r.on('error', reject);
      r.write(bytes);
    });
  }

  it('builds an unmasked Close 1001 a client accepts', async () => {
    expect(await parse(closeFrame(GOING_AWAY, 'proxy shutting down'), false)).toEqual({
      code: 1001,
      reason: 'proxy shutting down',
    });
  });

  it('builds a masked Close a server accepts (a client frame must be masked)', async () => {
    const key = Buffer.from([1, 2, 3, 250]);
    expect(await parse(closeFrame(GOING_AWAY, 'proxy shutting down', key), true)).toEqual({
      code: 1001,
      reason: 'proxy shutting down',
    });
  });

  it('keeps the reason within a control frame (125 bytes of payload)', () => {
    expect(closeFrame(GOING_AWAY, 'é'.repeat(300)).length).toBeLessThanOrEqual(127);
  });
});
