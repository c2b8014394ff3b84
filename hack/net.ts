// Loopback helpers shared by the tooling in hack/ and bench/ (and by the tests).
import net from 'node:net';

/** Asks the kernel for `n` distinct free ports on 127.0.0.1 (all bound at once, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** A free loopback TCP port (bound then released). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}
