/**
 * Script for runInNetns: starts a real sidecar inside the namespace with one
 * Origin per target (each on its own loopback port), sends one request through
 * each, and prints `{ [id]: { status, error, ms } }` as JSON on stdout.
 *
 * Usage: `node netns-sidecar.ts '<json array of {id, host, port, connectTimeout?}>'`
 */
import process from 'node:process';
import { get, proxyStatus, startSidecar } from './run-sidecar.ts';

interface Target {
  id: string;
  host: string;
  port: number;
  connectTimeout?: string;
}

const targets = (JSON.parse(process.argv[2] ?? '[]') as Target[]).slice(0, 50);
const results: Record<string, { status: number; error: string | undefined; ms: number }> = {};
await Promise.all(
  targets.map(async (t) => {
    const sc = await startSidecar({
      upstream: { host: t.host, port: t.port },
      timeouts: { connect: t.connectTimeout ?? '1500ms' },
    });
    try {
      const r = await get(`${sc.url}/`);
      results[t.id] = { status: r.status, error: proxyStatus(r).error, ms: Math.round(r.ms) };
    } finally {
      await sc.close();
    }
  }),
);
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
