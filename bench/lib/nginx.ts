// nginx configurations for the roles it plays in the bench: the origin (a fixed 18-byte
// answer, no file I/O), the reverse proxy under test (keep-alive upstream pool), and the
// WebSocket proxy under test (upgrades passed on).
// Both run in the foreground with one worker, everything under the bench's temporary directory.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ORIGIN_BODY = 'originguard bench\n';

function common(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  // Run as root, nginx's workers run as nobody: they must reach and write the request-body directory.
  chmodSync(dir, 0o755);
  chmodSync(tmp, 0o777);
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

/**
 * nginx as a plain reverse proxy, the way its documentation and most guides set one
 * up: keep-alive upstream, Host and the usual forwarding headers set, everything
 * else at Debian's defaults. The hostile-input comparison runs its cases through it.
 */
export function nginxPlainProxy(dir: string, port: number, upstreamPort: number): string[] {
  const conf = `${common(dir, 'plain')}
  upstream origin {
    server 127.0.0.1:${upstreamPort};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
  return write(dir, 'plain', conf);
}
