// An address with a port as URLs, Host headers, logs and reports write it: an
// IPv6 literal in brackets (RFC 3986 §3.2.2).

export const bracketed = (host: string): string => (host.includes(':') ? `[${host}]` : host);

export const hostPort = (host: string, port: number): string => `${bracketed(host)}:${port}`;
