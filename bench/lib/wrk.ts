// Saturation load with wrk (closed loop: 1 thread, N keep-alive connections), parsed from its text
// output. wrk runs on CPU 0 with the origin, the proxy alone on CPU 1.
import { runToEnd } from './processes.ts';

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  latencyMs: { p50: number; p75: number; p90: number; p99: number; avg: number; max: number };
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function ms(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  return m?.[1] && m[2] ? Math.round(Number(m[1]) * (UNIT_MS[m[2]] ?? Number.NaN) * 1000) / 1000 : Number.NaN;
}

export function parseWrk(out: string): WrkResult {
  const pct = (p: string) => ms(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out)?.[1]);
  const lat = /^\s*Latency\s+(\S+)\s+\S+\s+(\S+)/m.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  if (rps === undefined) throw new Error(`could not parse wrk output:\n${out}`);
  return {
    requestsPerSec: Math.round(Number(rps)),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN),
    latencyMs: {
      p50: pct('50'),
      p75: pct('75'),
      p90: pct('90'),
      p99: pct('99'),
      avg: ms(lat?.[1]),
      max: ms(lat?.[2]),
    },
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
  };
}

export async function runWrk(opts: {
  port: number;
  durationS: number;
  connections: number;
  cpu: number;
}): Promise<WrkResult> {
  const args = [
    '-t1',
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--timeout',
    '5s',
    '--latency',
    `http://127.0.0.1:${opts.port}/`,
  ];
  return parseWrk(await runToEnd('wrk', 'wrk', args, { cpu: opts.cpu }, (opts.durationS + 15) * 1000));
}
