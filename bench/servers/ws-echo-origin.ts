// WebSocket origin for the tunnel bench: answers the opening handshake (RFC 6455 §4.2.2),
// then echoes every byte it receives. It never parses frames, so the origin costs little on
// the shared CPU and the proxy in between is what the bench measures.
//
//   node bench/servers/ws-echo-origin.ts --port P
import { createHash } from 'node:crypto';
import net from 'node:net';
import { parseArgs } from 'node:util';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const { values } = parseArgs({ options: { port: { type: 'string' } } });

const server = net.createServer({ noDelay: true }, (socket) => {
  let head = Buffer.alloc(0);
  const onHead = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onHead);
    const text = head.subarray(0, end).toString('latin1');
    const key = /^sec-websocket-key:\s*(\S+)/im.exec(text)?.[1];
    if (key === undefined) {
      // A plain request (the bench's readiness check): one fixed answer.
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n');
      return;
    }
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const rest = head.subarray(end + 4);
    if (rest.length > 0) socket.write(rest);
    socket.pipe(socket);
  };
  socket.on('data', onHead);
  socket.on('error', () => socket.destroy());
});
server.listen({ host: '127.0.0.1', port: Number(values.port), backlog: 4096 });
process.once('SIGTERM', () => {
  server.close();
  process.exit(0);
});
