// An origin whose accept queue fills up: it listens with backlog 1 and then blocks its only thread,
// so it never calls accept(). Once backlog+1 connections are queued, the kernel drops further SYNs
// and a connecting client hangs until its own connect timeout. Run as a child process; prints
// {"port":N} and blocks for at most --hold seconds (the bench kills it sooner).
import { writeSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { hold: { type: 'string', default: '120' } } });
const server = net.createServer();
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  // Synchronous write, then block before the event loop can poll (and accept) even once.
  writeSync(1, `${JSON.stringify({ port })}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(values.hold) * 1000);
  process.exit(0);
});
