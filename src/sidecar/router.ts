// Pure routing of an incoming request to a declared Origin by listen port and
// Host header. Nothing that is not declared is ever a destination: an unknown
// Host is answered 421, never forwarded.

export interface Routable {
  readonly key: string; // namespace/name
  readonly listen: { readonly port: number; readonly address: string };
  readonly hosts?: readonly string[];
}

export interface PortRoutes<T extends Routable> {
  readonly exact: ReadonlyMap<string, T>;
  /** Wildcard suffixes ("*.example.re" stored as ".example.re"), longest first. */
  readonly wildcards: readonly (readonly [string, T])[];
  readonly fallback?: T;
}

export type RouteTable<T extends Routable> = ReadonlyMap<number, PortRoutes<T>>;

/** Normalizes a Host header: lower case, without port, without a trailing dot. Undefined if malformed. */
export function normalizeHost(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    return h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  if (colon >= 0) {
    if (!/^[0-9]{1,5}$/.test(h.slice(colon + 1))) return undefined;
    h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return /^[a-z0-9]([a-z0-9-_.]*[a-z0-9])?$/.test(h) ? h : undefined;
}

interface PortBuild<T extends Routable> {
  exact: Map<string, T>;
  wildcards: [string, T][];
  fallback?: T;
  address: string;
  owner: string;
}

function addHosts<T extends Routable>(port: PortBuild<T>, o: T, errors: string[]): void {
  const hosts = o.hosts ?? [];
  if (hosts.length === 0) {
    if (port.fallback === undefined) port.fallback = o;
    else {
      errors.push(
        `${o.key}: spec.hosts: port ${o.listen.port} already has an Origin without hosts (${port.fallback.key}); set hosts on one of them`,
      );
    }
    return;
  }
  for (const host of hosts) {
    const isWildcard = host.startsWith('*.');
    const key = isWildcard ? host.slice(1) : host;
    const existing = isWildcard ? port.wildcards.find(([s]) => s === key)?.[1] : port.exact.get(key);
    if (existing !== undefined) {
      errors.push(
        `${o.key}: spec.hosts: ${host} on port ${o.listen.port} is already served by ${existing.key}`,
      );
    } else if (isWildcard) port.wildcards.push([key, o]);
    else port.exact.set(key, o);
  }
}

/** Builds the table; returns conflicts (two Origins claiming one host or one port's default) as messages. */
export function buildRoutes<T extends Routable>(
  origins: readonly T[],
): { table: RouteTable<T>; errors: string[] } {
  const errors: string[] = [];
  const byPort = new Map<number, PortBuild<T>>();
  for (const o of origins) {
    let port = byPort.get(o.listen.port);
    if (port === undefined) {
      port = { exact: new Map(), wildcards: [], address: o.listen.address, owner: o.key };
      byPort.set(o.listen.port, port);
    } else if (port.address !== o.listen.address) {
      errors.push(
        `${o.key}: spec.listen.address: port ${o.listen.port} is bound to ${port.address} by ${port.owner}; Origins sharing a port must use the same address`,
      );
    }
    addHosts(port, o, errors);
  }
  const table = new Map<number, PortRoutes<T>>();
  for (const [portNumber, p] of byPort) {
    p.wildcards.sort((a, b) => b[0].length - a[0].length);
    table.set(
      portNumber,
      p.fallback === undefined
        ? { exact: p.exact, wildcards: p.wildcards }
        : { exact: p.exact, wildcards: p.wildcards, fallback: p.fallback },
    );
  }
  return { table, errors };
}

/** The Origin serving a request on a port for a Host, or undefined (answer 421). */
export function route<T extends Routable>(
  routes: PortRoutes<T> | undefined,
  host: string | undefined,
): T | undefined {
  if (routes === undefined) return undefined;
  const h = normalizeHost(host);
  if (h !== undefined) {
    const exact = routes.exact.get(h);
    if (exact !== undefined) return exact;
    for (const [suffix, o] of routes.wildcards) if (h.endsWith(suffix) && h.length > suffix.length) return o;
  }
  return routes.fallback;
}
