// undici's Pool on its own, without the package entry (fetch, WebSocket, caches).
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';

  const PoolClass: typeof Pool;
  export default PoolClass;
}
