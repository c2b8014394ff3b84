// The @fastify/http-proxy baseline: its documented minimal setup with default options
// (reply-from on an undici pool: 128 connections, pipelining 1), logging off.
//
//   node bench/servers/fastify-http-proxy.ts --port P --upstream-port U

import { parseArgs } from 'node:util';
import httpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'upstream-port': { type: 'string' } },
});
const app = Fastify({ logger: false });
await app.register(httpProxy, { upstream: `http://127.0.0.1:${values['upstream-port']}` });
await app.listen({ host: '127.0.0.1', port: Number(values.port) });
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
