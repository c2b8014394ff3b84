// Slow uploads against three proxies side by side: originguard receiving small
// bodies before forwarding them (the default: 64 KiB per request, 16 MiB per
// sidecar), originguard streaming every body (bodyBufferBytes: 0), and nginx
// (which buffers bodies, spilling to disk). N clients each send all of a
// 60 KiB body but its last byte and wait; meanwhile the bench reads the proxy's
// resident memory and how many connections the origin is holding open for
// requests that have not finished arriving. Then every client sends its last
// byte and every upload must complete.
//
//   npm run bench:buffering           (builds dist/ first)
//   node bench/request-buffering.ts --clients 300 --body 61440

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nginxPlainProxy } from './lib/nginx.ts';
import { groupRss, type Started, start, stopAll } from './lib/processes.ts';
import { freePort, pollUntil, startOriginguard } from './lib/subjects.ts';
import { ensureTools } from './lib/tools.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An origin that counts the connections on which a request has begun but not finished arriving. */
async function startOrigin(): Promise<{
  port: number;
  waiting: () => number;
  done: () => number;
  close: () => void;
}> {
  let waiting = 0;
  let done = 0;
  const server = http.createServer((req, res) => {
    waiting++;
    req.resume();
    req.on('end', () => {
      waiting--;
      done++;
      res.end('ok');
    });
    req.on('aborted', () => waiting--);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    waiting: () => waiting,
    done: () => done,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

interface Subject {
  readonly name: string;
  readonly proc: Started;
  readonly port: number;
}

/** Opens `n` uploads that stop one byte short; resolves the function that finishes them all. */
async function holdUploads(port: number, n: number, size: number): Promise<() => Promise<number>> {
  const head = `POST /upload HTTP/1.1\r\nHost: upload.test\r\nContent-Length: ${size}\r\n\r\n`;
  const body = Buffer.alloc(size - 1, 0x61);
  const sockets: net.Socket[] = [];
  const answered: Promise<boolean>[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    answered.push(
      new Promise((resolve) => {
        let got = '';
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (/\r\n\r\nok$/.test(got) || got.includes('\r\n0\r\n\r\n'))
            resolve(got.startsWith('HTTP/1.1 200'));
        });
        s.on('close', () => resolve(got.startsWith('HTTP/1.1 200')));
      }),
    );
    s.write(head);
    s.write(body);
    sockets.push(s);
  }
  return async () => {
    for (const s of sockets) s.write('a');
    const ok = (await Promise.all(answered)).filter(Boolean).length;
    for (const s of sockets) s.destroy();
    return ok;
  };
}

interface Result {
  name: string;
  idleMb: number;
  heldMb: number;
  originWaiting: number;
  completed: number;
}

async function measure(s: Subject, origin: Awaited<ReturnType<typeof startOrigin>>, n: number, size: number) {
  await sleep(500);
  const idle = groupRss(s.proc.pid);
  const finish = await holdUploads(s.port, n, size);
  await sleep(2000);
  const held = groupRss(s.proc.pid);
  const originWaiting = origin.waiting();
  const completed = await finish();
  return { name: s.name, idleMb: idle / MiB, heldMb: held / MiB, originWaiting, completed } satisfies Result;
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      clients: { type: 'string', default: '300' },
      body: { type: 'string', default: String(60 * 1024) },
      'originguard-cli': { type: 'string', default: join(ROOT, 'dist/originguard.mjs') },
      'no-install': { type: 'boolean' },
    },
  });
  const n = Number(flags.clients);
  const size = Number(flags.body);
  const [nginx] = ensureTools(['nginx'], flags['no-install'] !== true);
  const dir = mkdtempSync(join(tmpdir(), 'originguard-buffering-'));
  const results: Result[] = [];
  try {
    for (const subject of ['originguard', 'originguard streaming', 'nginx'] as const) {
      const origin = await startOrigin();
      let s: Subject;
      if (subject === 'nginx') {
        const port = await freePort();
        const proc = start('nginx', 'nginx', nginxPlainProxy(dir, port, origin.port));
        await pollUntil(port, '/', (st) => st === 200, performance.now(), 15_000, proc);
        s = { name: `nginx (${nginx?.version.replace('nginx version: ', '')})`, proc, port };
      } else {
        const buffer = subject === 'originguard' ? 65536 : 0;
        const og = await startOriginguard(
          { dir, root: ROOT, originguardCli: flags['originguard-cli'] },
          subject.replace(' ', '-'),
          { host: '127.0.0.1', port: origin.port },
          [],
          [`request: {bodyBufferBytes: ${buffer}}`],
        );
        await pollUntil(og.adminPort, '/readyz', (st) => st === 200, performance.now(), 15_000, og.proc);
        s = { name: `${subject} (bodyBufferBytes: ${buffer})`, proc: og.proc, port: og.port };
      }
      results.push(await measure(s, origin, n, size));
      await stopAll();
      origin.close();
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `# Slow uploads: ${n} clients, each ${size} bytes but the last`,
    '',
    `Generated by \`npm run bench:buffering\` on ${new Date().toISOString()}. The sidecar's budget is the default`,
    '`--request-buffer-memory` (16 MiB); "held at the origin" counts requests the origin has begun to receive',
    'but not finished, 2 s after every client sent all but its last byte.',
    '',
    '| proxy | RSS idle | RSS while held | held at the origin | completed |',
    '|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.idleMb.toFixed(1)} MiB | ${r.heldMb.toFixed(1)} MiB (+${(r.heldMb - r.idleMb).toFixed(1)}) | ${r.originWaiting} of ${n} | ${r.completed} of ${n} |`,
    ),
    '',
  ];
  const out = join(ROOT, 'bench/results/request-buffering.md');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, lines.join('\n'));
  process.stdout.write(`${lines.join('\n')}\nwrote ${out}\n`);
}

await main();
