/**
 * Script for runInNetns: diagnoses each target with the library inside the
 * namespace and prints `{ [id]: { cause, statusCode, tcp, summary, warnings } }`.
 * A target may name `dns` records: a DNS server started here answers them, and
 * an HTTP origin on `serve` (address:port) answers 200.
 *
 * Usage: `node netns-diagnose.ts '<json array of {id, url, connectTimeoutMs?, dns?, serve?}>'`
 */
import http from 'node:http';
import process from 'node:process';
import { diagnose } from '../../src/diagnose/diagnosis.ts';
import { parseTarget, planForAddress } from '../../src/diagnose/plan.ts';
import { startDnsServer } from './dns-server.ts';

interface Target {
  id: string;
  url: string;
  connectTimeoutMs?: number;
  dns?: Record<string, string[]>;
  serve?: { host: string; port: number };
}

const targets = (JSON.parse(process.argv[2] ?? '[]') as Target[]).slice(0, 50);
const results: Record<string, unknown> = {};
for (const t of targets) {
  const dns = await startDnsServer(
    Object.fromEntries(
      Object.entries(t.dns ?? {}).map(([name, a]) => [name, { kind: 'answer' as const, a }]),
    ),
  );
  const server = http.createServer((_req, res) => res.end('ok'));
  if (t.serve !== undefined) {
    const { host, port } = t.serve;
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
  }
  const plan = planForAddress(t.url, parseTarget(t.url), {
    connectTimeoutMs: t.connectTimeoutMs ?? 1500,
    responseTimeoutMs: 1500,
    resolver: { servers: [dns.address] },
  });
  const d = await diagnose(plan);
  results[t.id] = {
    reachable: d.reachable,
    cause: d.verdict.cause,
    statusCode: d.verdict.statusCode,
    summary: d.verdict.summary,
    fix: d.verdict.fix,
    tcp: d.steps
      .filter((s) => s.phase === 'tcp')
      .map((s) => `${s.address} ${s.detail} ${Math.round(s.elapsedMs)}`),
    warnings: d.verdict.warnings.map((w) => `${w.summary} | ${w.fix}`),
  };
  server.close();
  await dns.close();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
