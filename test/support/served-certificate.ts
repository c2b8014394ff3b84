// Which certificate a TLS server on loopback presents to a new connection:
// how tests see a webhook certificate rotate without restarting the server.
import { connect } from 'node:tls';

/**
 * Serial number of the certificate 127.0.0.1:port presents. With `ca`, the
 * certificate must also verify against it; without, any certificate is read.
 */
export function servedSerial(port: number, ca?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const options = ca === undefined ? { rejectUnauthorized: false } : { ca };
    const socket = connect({ host: '127.0.0.1', port, ...options }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.once('error', reject);
  });
}
