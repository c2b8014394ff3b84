// undici's Client on its own, without the package entry (fetch, WebSocket, caches):
// the diagnosis sends one request over one connection it makes itself.
declare module 'undici/lib/dispatcher/client.js' {
  import type { Client } from 'undici';

  const ClientClass: typeof Client;
  export default ClientClass;
}
