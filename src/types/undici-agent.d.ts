// undici's Agent on its own, without the package entry (fetch, WebSocket, caches):
// the Kubernetes client needs only request(), and the sidecar in a pod would pay
// several MB for the rest.
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';

  const AgentClass: typeof Agent;
  export default AgentClass;
}

// Dispatcher#request, which the package entry adds to every dispatcher's prototype:
// called with the Agent as `this`.
declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';

  const request: (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
  export default request;
}
