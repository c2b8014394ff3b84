// Loopback helpers shared by the tooling in hack/ and bench/ (and by the tests).
import net from 'node:net';

/** A free loopback TCP port (bound then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
