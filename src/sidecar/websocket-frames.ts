// Pure WebSocket framing (RFC 6455 §5.2) for a tunnel that never re-frames: it
// follows frame boundaries in one direction of the byte stream, reading only
// the headers, so that a Close frame can be put between two frames (never in
// the middle of one) when the sidecar shuts down.

/** Close status code for an endpoint going away, e.g. a server shutting down (RFC 6455 §7.4.1). */
export const GOING_AWAY = 1001;

const OPCODE_CLOSE = 0x8;

/**
 * Follows frame boundaries through the chunks of one direction. Memory is a
 * few numbers and at most 13 header bytes, whatever the frame sizes.
 */
export class FrameBoundaries {
  /** Payload bytes left in the current frame. */
  #remaining = 0;
  /** Bytes of a frame header split across chunks (at most 2 + 8 + 4 - 1). */
  #header: number[] = [];
  #closeSeen = false;

  /** True between two frames: a frame can be inserted here without corrupting one. */
  get atBoundary(): boolean {
    return this.#remaining === 0 && this.#header.length === 0;
  }

  /** True once a Close frame went through: nothing may follow it in this direction. */
  get closeSeen(): boolean {
    return this.#closeSeen;
  }

  /**
   * Advances through `chunk` and returns how many of its bytes were consumed: all
   * of them, or with `stopAtBoundary` only up to the first boundary (0 if the
   * stream is at one already).
   */
  advance(chunk: Uint8Array, stopAtBoundary = false): number {
    let i = 0;
    while (i < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return i;
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= take;
        i += take;
        continue;
      }
      if (this.#header.length === 0) {
        // The usual case: a whole header in this chunk, read in place.
        const read = this.#headerAt(chunk, i);
        if (read > 0) {
          i += read;
          continue;
        }
      }
      this.#header.push(chunk[i] as number);
      i++;
      this.#tryHeader();
    }
    return i;
  }

  /** Completes the pending header once all its bytes are in, then counts its payload. */
  #tryHeader(): void {
    if (this.#headerAt(this.#header, 0) > 0) this.#header = [];
  }

  /** Reads a frame header at `i` if all of it is in `bytes`; returns its size, or 0. */
  #headerAt(bytes: ArrayLike<number>, i: number): number {
    if (bytes.length - i < 2) return 0;
    const b1 = bytes[i + 1] as number;
    const len7 = b1 & 0x7f;
    const extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const size = 2 + extended + ((b1 & 0x80) !== 0 ? 4 : 0);
    if (bytes.length - i < size) return 0;
    let payload = len7;
    if (extended > 0) {
      payload = 0;
      // Up to 2^53: a frame that large never completes anyway; the tunnel's timeouts end it.
      for (let k = i + 2; k < i + 2 + extended; k++) payload = payload * 256 + (bytes[k] as number);
    }
    if (((bytes[i] as number) & 0x0f) === OPCODE_CLOSE) this.#closeSeen = true;
    this.#remaining = payload;
    return size;
  }
}

/**
 * A Close frame with a status code and a short reason. Frames a client sends
 * are masked (RFC 6455 §5.3), so the one toward the origin needs `maskKey`.
 */
export function closeFrame(code: number, reason: string, maskKey?: Uint8Array): Buffer {
  // A control frame carries at most 125 bytes: the code and up to 123 of whole UTF-8 characters.
  let cut = reason.slice(0, 123);
  while (Buffer.byteLength(cut) > 123) cut = cut.slice(0, -1);
  const text = Buffer.from(cut, 'utf8');
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const masked = maskKey !== undefined;
  const head = Buffer.from([0x80 | OPCODE_CLOSE, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (maskKey[i % 4] as number);
  return Buffer.concat([head, Buffer.from(maskKey.subarray(0, 4)), payload]);
}
