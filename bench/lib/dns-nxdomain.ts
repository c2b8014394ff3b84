// A UDP DNS server on loopback that answers every query with NXDOMAIN (RCODE 3), and records when
// each query arrived and when its answer left, so the bench can time the sidecar from the answer.
import dgram from 'node:dgram';

export interface DnsEvent {
  name: string;
  type: number;
  receivedAt: number;
  answeredAt: number;
}

export interface NxdomainServer {
  port: number;
  events: DnsEvent[];
  close(): Promise<void>;
}

/** Parses the first question's name and type; undefined when the packet is not a query we can read. */
function question(msg: Buffer): { name: string; type: number; end: number } | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let pos = 12;
  for (let hops = 0; hops < 128; hops++) {
    const len = msg[pos];
    if (len === undefined || len > 63) return undefined;
    pos++;
    if (len === 0) {
      if (pos + 4 > msg.length) return undefined;
      return { name: labels.join('.'), type: msg.readUInt16BE(pos), end: pos + 4 };
    }
    labels.push(msg.toString('latin1', pos, pos + len));
    pos += len;
  }
  return undefined;
}

export function nxdomainReply(query: Buffer, qEnd: number): Buffer {
  const reply = Buffer.from(query.subarray(0, qEnd));
  const rd = query.readUInt16BE(2) & 0x0100;
  const opcode = query.readUInt16BE(2) & 0x7800;
  // QR=1, opcode copied, AA=1, RD copied, RA=1, RCODE=3 (NXDOMAIN)
  reply.writeUInt16BE(0x8000 | opcode | 0x0400 | rd | 0x0080 | 3, 2);
  reply.writeUInt16BE(1, 4); // QDCOUNT
  reply.writeUInt16BE(0, 6); // ANCOUNT
  reply.writeUInt16BE(0, 8); // NSCOUNT
  reply.writeUInt16BE(0, 10); // ARCOUNT
  return reply;
}

export function startNxdomainServer(): Promise<NxdomainServer> {
  const socket = dgram.createSocket('udp4');
  const events: DnsEvent[] = [];
  socket.on('message', (msg, rinfo) => {
    const receivedAt = performance.now();
    const q = question(msg);
    if (!q) return;
    socket.send(nxdomainReply(msg, q.end), rinfo.port, rinfo.address, () => {
      events.push({ name: q.name, type: q.type, receivedAt, answeredAt: performance.now() });
    });
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      resolve({
        port: socket.address().port,
        events,
        close: () => new Promise((r) => socket.close(() => r())),
      });
    });
  });
}
