// Alternative origin (--origin node): node:http answering the same fixed body as the nginx origin.
// nginx is the default origin because it costs less CPU on the shared core and varies less.
//
//   node bench/servers/node-origin.ts --port P
import http from 'node:http';
import { parseArgs } from 'node:util';

const BODY = Buffer.from('originguard bench\n');
const { values } = parseArgs({ options: { port: { type: 'string' } } });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 120_000;
server.maxRequestsPerSocket = 0;
server.listen({ host: '127.0.0.1', port: Number(values.port), backlog: 4096 });
process.once('SIGTERM', () => server.close(() => process.exit(0)));
