// An upgraded connection after the origin's 101: a raw tunnel of bytes both
// ways, never re-framed, with no buffering beyond the two sockets' own
// (backpressure pauses the side that sends too fast). Either side closing or
// resetting closes or resets the other; timeouts.streamIdle closes a tunnel
// silent both ways. At shutdown a WebSocket gets a Close frame 1001 (Going
// Away) each way, put between two frames, so clients reconnect elsewhere.
// Memory per tunnel is a few small objects: the listeners are shared functions
// that find their tunnel on the socket, not closures made per tunnel.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TunnelMetrics } from './metrics.ts';
import { closeFrame, FrameBoundaries, GOING_AWAY } from './websocket-frames.ts';

/** How long a closing tunnel may take to flush before its sockets are destroyed. */
const CLOSE_FLUSH_MS = 2000;

/** Errors that say the peer reset its connection: passed on as a reset, not a clean close. */
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** On each socket: the direction it sends into (it is that direction's `from`). */
const OUT = Symbol('originguard.tunnel.out');
/** On each socket: the direction it receives from (it is that direction's `to`). */
const IN = Symbol('originguard.tunnel.in');

type TunnelSocket = Duplex & { [OUT]: Direction; [IN]: Direction };

export interface TunnelOptions {
  readonly client: Duplex;
  readonly origin: Duplex;
  /** Bytes the client sent after its request headers, before the switch: the tunnel's first bytes. */
  readonly head: Buffer;
  /** The protocol switched to is WebSocket: frame boundaries are followed for the Close at shutdown. */
  readonly websocket: boolean;
  readonly idleMs: number;
  readonly metrics: TunnelMetrics;
  /** Told once both sockets are closed. */
  readonly onClosed: (t: Tunnel) => void;
}

/** One direction of a tunnel: from one socket to the other. */
class Direction {
  bytes = 0;
  flushed = 0;
  readonly tunnel: Tunnel;
  readonly from: Duplex;
  readonly to: Duplex;
  readonly frames: FrameBoundaries | undefined;
  /** A Close frame to put at the next frame boundary; then nothing more goes this way. */
  #pendingClose: Buffer | undefined;
  sealed = false;

  constructor(tunnel: Tunnel, from: Duplex, to: Duplex, websocket: boolean) {
    this.tunnel = tunnel;
    this.from = from;
    this.to = to;
    this.frames = websocket ? new FrameBoundaries() : undefined;
  }

  /** Forwards a chunk, unless a Close went out this way (then it is dropped, as RFC 6455 §5.5.1 wants). */
  carry(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.sealed) return;
    if (this.#pendingClose !== undefined && this.frames !== undefined) {
      const n = this.frames.advance(chunk, true);
      if (this.frames.atBoundary) {
        if (n > 0) this.to.write(chunk.subarray(0, n));
        this.#writeClose();
        return;
      }
      this.#write(chunk);
      return;
    }
    this.frames?.advance(chunk);
    this.#write(chunk);
  }

  #write(chunk: Buffer): void {
    if (!this.to.write(chunk)) this.from.pause();
  }

  /** Seals this direction with a Close frame, at once or at the end of the frame in flight. */
  closeWith(frame: Buffer): void {
    if (this.sealed || this.frames === undefined) return;
    // The sender already closed this way: a second Close would be a protocol error.
    if (this.frames.closeSeen) {
      this.sealed = true;
      return;
    }
    this.#pendingClose = frame;
    if (this.frames.atBoundary) this.#writeClose();
  }

  #writeClose(): void {
    this.to.write(this.#pendingClose as Buffer);
    this.#pendingClose = undefined;
    this.sealed = true;
  }
}

function onData(this: TunnelSocket, chunk: Buffer): void {
  const d = this[OUT];
  d.tunnel.lastActivity = performance.now();
  d.carry(chunk);
}

function onDrain(this: TunnelSocket): void {
  this[IN].from.resume();
}

/** A half-close is passed on; the other direction may go on. */
function onEnd(this: TunnelSocket): void {
  this[OUT].to.end();
}

function onError(this: TunnelSocket, err: NodeJS.ErrnoException): void {
  const other = this[OUT].to;
  if (other.destroyed) return;
  const reset = (other as { resetAndDestroy?: () => void }).resetAndDestroy;
  if (err.code !== undefined && RESETS.has(err.code) && reset !== undefined) reset.call(other);
  else other.destroy();
}

function onClose(this: TunnelSocket): void {
  this[OUT].tunnel.sideClosed(this[OUT].to);
}

function onIdleTimer(t: Tunnel): void {
  t.checkIdle();
}

/** Ends a socket once what was written is flushed, and destroys it after a bound whatever happens. */
function endSoon(s: Duplex): void {
  if (s.destroyed) return;
  s.end(() => s.destroy());
  setTimeout(() => s.destroy(), CLOSE_FLUSH_MS).unref();
}

export class Tunnel {
  /** performance.now() of the last bytes either way. */
  lastActivity = performance.now();
  readonly #client: Duplex;
  readonly #origin: Duplex;
  readonly #up: Direction;
  readonly #down: Direction;
  readonly #metrics: TunnelMetrics;
  readonly #idleMs: number;
  readonly #onClosed: (t: Tunnel) => void;
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: TunnelOptions) {
    this.#client = o.client;
    this.#origin = o.origin;
    this.#metrics = o.metrics;
    this.#idleMs = o.idleMs;
    this.#onClosed = o.onClosed;
    this.#up = new Direction(this, o.client, o.origin, o.websocket);
    this.#down = new Direction(this, o.origin, o.client, o.websocket);
    o.metrics.open.inc();
    o.metrics.live.add(this);
    for (const d of [this.#up, this.#down]) {
      const from = d.from as TunnelSocket;
      from[OUT] = d;
      (d.to as TunnelSocket)[IN] = d;
      from.on('data', onData);
      from.on('drain', onDrain);
      from.on('end', onEnd);
      from.on('error', onError);
      from.on('close', onClose);
    }
    // Both may be paused: Node hands over the client socket paused, undici the origin's as it was.
    o.client.resume();
    o.origin.resume();
    (o.client as { setTimeout?: (ms: number) => void }).setTimeout?.(0);
    (o.client as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    if (o.head.length > 0) this.#up.carry(o.head);
    this.#armIdle();
    if (o.client.destroyed) this.sideClosed(o.origin);
    if (o.origin.destroyed) this.sideClosed(o.client);
  }

  /** Adds the bytes carried since the last call to the counters (at each scrape and at the end). */
  flushBytes(): void {
    this.#metrics.clientToOrigin.inc(this.#up.bytes - this.#up.flushed);
    this.#up.flushed = this.#up.bytes;
    this.#metrics.originToClient.inc(this.#down.bytes - this.#down.flushed);
    this.#down.flushed = this.#down.bytes;
  }

  /**
   * Shutdown: a WebSocket gets a Close 1001 each way (to the origin masked, as a
   * client's frames are), each at a frame boundary; other tunnels are closed.
   */
  goAway(): void {
    if (this.#closed) return;
    if (this.#down.frames === undefined) {
      this.#endBoth();
      return;
    }
    this.#down.closeWith(closeFrame(GOING_AWAY, 'proxy shutting down'));
    this.#up.closeWith(closeFrame(GOING_AWAY, 'proxy shutting down', randomBytes(4)));
    // Ends both once each Close is out; an origin stalled mid-frame cannot hold the shutdown.
    const started = performance.now();
    const check = setInterval(() => {
      const sealed = this.#down.sealed && this.#up.sealed;
      if (this.#closed || sealed || performance.now() - started > CLOSE_FLUSH_MS) {
        clearInterval(check);
        this.#endBoth();
      }
    }, 10);
  }

  /** The idle timer fired: closes a tunnel silent both ways, else waits for the rest of the interval. */
  checkIdle(): void {
    if (this.#closed) return;
    if (this.lastActivity + this.#idleMs - performance.now() > 1) {
      this.#armIdle();
      return;
    }
    this.#metrics.idleCloses.inc();
    this.#endBoth();
  }

  /** Fires idleMs after the last bytes; re-armed lazily, so a chunk costs no timer work. */
  #armIdle(): void {
    const left = this.lastActivity + this.#idleMs - performance.now();
    this.#idleTimer = setTimeout(onIdleTimer, Math.max(1, left), this);
  }

  #endBoth(): void {
    endSoon(this.#client);
    endSoon(this.#origin);
  }

  /** One socket closed: the other is ended; once both are closed the tunnel is done. */
  sideClosed(other: Duplex): void {
    endSoon(other);
    if (!(this.#client.destroyed && this.#origin.destroyed) || this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.flushBytes();
    this.#metrics.live.delete(this);
    this.#metrics.open.dec();
    this.#onClosed(this);
  }
}

/** The open tunnels of a sidecar, for shutdown. */
export class TunnelSet {
  readonly #open = new Set<Tunnel>();
  #waiters: (() => void)[] = [];

  /** Opens a tunnel and keeps it until both its sockets are closed. */
  open(o: Omit<TunnelOptions, 'onClosed'>): Tunnel {
    const t = new Tunnel({ ...o, onClosed: (closed) => this.#closed(closed) });
    if (!(o.client.destroyed && o.origin.destroyed)) this.#open.add(t);
    return t;
  }

  #closed(t: Tunnel): void {
    this.#open.delete(t);
    if (this.#open.size > 0) return;
    for (const w of this.#waiters) w();
    this.#waiters = [];
  }

  get size(): number {
    return this.#open.size;
  }

  /** Resolves when no tunnel is open. */
  closed(): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Sends every tunnel away (see Tunnel.goAway) and resolves once all are closed. */
  goAway(): Promise<void> {
    for (const t of this.#open) t.goAway();
    return this.closed();
  }
}
