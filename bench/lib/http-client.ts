// A minimal HTTP/1.1 keep-alive client on a raw socket: one request in flight per connection.
// The bench uses it instead of undici so that the measuring side allocates little, adds little
// latency, and times each response from the exact write of its request.
import net from 'node:net';

export interface HttpResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Map<string, string>;
  body: Buffer;
}

interface Pending {
  resolve(r: HttpResponse): void;
  reject(e: Error): void;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

export function buildRequest(host: string, path = '/', extra: Record<string, string> = {}): Buffer {
  let head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: originguard-bench\r\n`;
  for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`);
}

export class HttpConnection {
  readonly socket: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #pending: Pending | undefined;
  #closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#parse(false);
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#parse(true);
      this.#fail(new Error('connection closed before a complete response'));
    });
    socket.on('error', (e) => this.#fail(e));
  }

  static connect(host: string, port: number, timeoutMs = 5000): Promise<HttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new HttpConnection(socket));
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get usable(): boolean {
    return !this.#closed && !this.socket.destroyed;
  }

  /** Sends a prebuilt request (see buildRequest) and resolves with the whole response. */
  send(request: Buffer, timeoutMs = 10_000): Promise<HttpResponse> {
    if (this.#pending) return Promise.reject(new Error('a request is already in flight'));
    if (!this.usable) return Promise.reject(new Error('connection is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new Error(`no complete response within ${timeoutMs} ms`));
        this.socket.destroy();
      }, timeoutMs);
      this.#pending = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.socket.write(request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #fail(e: Error): void {
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(e);
  }

  #parse(atClose: boolean): void {
    if (!this.#pending) return;
    const headEnd = this.#buf.indexOf(CRLFCRLF);
    if (headEnd < 0) return;
    const lines = this.#buf.toString('latin1', 0, headEnd).split('\r\n');
    const status = Number(lines[0]?.split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    const start = headEnd + 4;
    const end = bodyEnd(this.#buf, start, status, headers, atClose);
    if (end < 0) return;
    const body = this.#buf.subarray(start, end);
    this.#buf = this.#buf.subarray(end);
    if (headers.get('connection')?.toLowerCase() === 'close') {
      this.#closed = true;
      this.socket.end();
    }
    const p = this.#pending;
    this.#pending = undefined;
    p.resolve({ status, headers, body });
  }
}

/** Offset just past the body, or -1 while incomplete. */
function bodyEnd(
  buf: Buffer,
  start: number,
  status: number,
  h: Map<string, string>,
  atClose: boolean,
): number {
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return start;
  const length = h.get('content-length');
  if (length !== undefined) return buf.length - start >= Number(length) ? start + Number(length) : -1;
  if (h.get('transfer-encoding')?.toLowerCase().includes('chunked')) return chunkedEnd(buf, start);
  return atClose ? buf.length : -1;
}

function chunkedEnd(buf: Buffer, start: number): number {
  let pos = start;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos);
    if (lineEnd < 0) return -1;
    const size = Number.parseInt(buf.toString('latin1', pos, lineEnd), 16);
    if (Number.isNaN(size)) return buf.length; // malformed: take what we have
    if (size === 0) {
      const trailerEnd = buf.indexOf(CRLFCRLF, lineEnd);
      return trailerEnd < 0 ? -1 : trailerEnd + 4;
    }
    pos = lineEnd + 2 + size + 2;
    if (pos > buf.length) return -1;
  }
}

/** Percentile (0..1) of an ascending sorted array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}
