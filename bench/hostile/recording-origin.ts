// The origin behind the proxy under test: a raw TCP server that records every
// request byte for byte (and when its first byte arrived), then answers with
// whatever the current case says, also bytes no real server would send.
import net from 'node:net';
import { type Message, splitMessages } from './wire.ts';

export interface Recorded extends Message {
  /** Which accepted connection it came on (1, 2, ...). */
  readonly connection: number;
  /** performance.now() when its first byte arrived. */
  readonly firstByteAt: number;
}

/** What the origin sends for the nth request of a case (n from 0); `close` ends the connection after it. */
export interface Answer {
  readonly bytes: string;
  readonly close?: boolean;
}

export type Responder = (request: Message, n: number) => Answer;

export const OK_ANSWER: Answer = {
  bytes: 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok',
};

export class RecordingOrigin {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #recorded: Recorded[] = [];
  #responder: Responder = () => OK_ANSWER;
  #answered = 0;
  #connections = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(): Promise<RecordingOrigin> {
    const server = net.createServer();
    const origin = new RecordingOrigin(server);
    server.on('connection', (s) => origin.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: '127.0.0.1' }, resolve);
    });
    return origin;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Every request received so far, complete ones and (after their connection closed) partial ones. */
  get recorded(): readonly Recorded[] {
    return this.#recorded;
  }

  /** Answers the next requests with `responder`, counting them from 0. */
  answerWith(responder: Responder): void {
    this.#responder = responder;
    this.#answered = 0;
  }

  /** Closes every connection the proxy holds to the origin, so the next case starts clean. */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  #accept(socket: net.Socket): void {
    const connection = ++this.#connections;
    this.#sockets.add(socket);
    let buf = '';
    let since = 0;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      if (buf === '') since = performance.now();
      buf += d.toString('latin1');
      const { messages, rest } = splitMessages(buf, 'request', false);
      buf = rest;
      for (const m of messages) {
        this.#recorded.push({ ...m, connection, firstByteAt: since });
        since = performance.now();
        const answer = this.#responder(m, this.#answered++);
        socket.write(Buffer.from(answer.bytes, 'latin1'));
        if (answer.close === true) socket.end();
      }
    });
    socket.on('close', () => {
      this.#sockets.delete(socket);
      if (buf === '') return;
      const [partial] = splitMessages(buf, 'request', true).messages;
      const head = buf.split('\r\n', 1)[0] ?? '';
      this.#recorded.push(
        partial !== undefined
          ? { ...partial, complete: false, connection, firstByteAt: since }
          : { start: head, headers: [], body: '', raw: buf, complete: false, connection, firstByteAt: since },
      );
    });
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
