// nginx configurations for the roles it plays in the bench: the origin (a fixed 18-byte
// answer, no file I/O), the reverse proxy under test (keep-alive upstream pool), and the
// WebSocket proxy under test (upgrades passed on).
// Both run in the foreground with one worker, everything under the bench's temporary directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ORIGIN_BODY = 'originguard bench\n';

function common(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  return `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 4096; multi_accept on; }
`.concat(`http {
  access_log off;
  server_tokens off;
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
`);
}

/** Writes the config and returns the nginx arguments to run it. */
export function nginxOrigin(dir: string, port: number): string[] {
  const conf = `${common(dir, 'origin')}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type text/plain;
      return 200 "originguard bench\\n";
    }
  }
}
`;
  return write(dir, 'origin', conf);
}

export function nginxProxy(dir: string, port: number, upstreamPort: number): string[] {
  const conf = `${common(dir, 'proxy')}
  upstream origin {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  return write(dir, 'proxy', conf);
}

/** nginx as a WebSocket reverse proxy, configured for upgrades as its documentation says. */
export function nginxWsProxy(dir: string, port: number, upstreamPort: number): string[] {
  const conf = `${common(dir, 'ws-proxy')}
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }
  upstream ws_origin {
    server 127.0.0.1:${upstreamPort};
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://ws_origin;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 300s;
    }
  }
}
`;
  return write(dir, 'ws-proxy', conf);
}

function write(dir: string, name: string, conf: string): string[] {
  const file = join(dir, `${name}-nginx.conf`);
  writeFileSync(file, conf);
  return ['-e', join(dir, `${name}-error.log`), '-p', dir, '-c', file];
}
