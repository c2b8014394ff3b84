/**
 * Run code inside a user + network namespace the test creates (`unshare -rn`), to
 * produce ICMP rejects, silent drops and route-type failures for real, without root.
 *
 * The namespace starts with only a down `lo`; {@link runInNetns} brings `lo` up, runs
 * the `setup` shell lines (addresses, routes, nft rules) and then execs
 * `process.execPath <script> <args…>` inside it. The namespace has no interface but
 * `lo` and no route out, so nothing can leave the machine; it disappears with the
 * process. The addresses used by the helpers below (198.18.0.0/15, the RFC 2544
 * benchmarking block, and fd00:0:0:6f67::/64) exist only inside that namespace.
 *
 * What a plain `net.connect` gets inside (Linux 6.18, see test/network/fixtures.test.ts):
 *
 * | condition (nft on input, or route)             | err.code      |
 * |------------------------------------------------|---------------|
 * | nothing listening / `reject with tcp reset`    | ECONNREFUSED  |
 * | `reject with icmp type port-unreachable`       | ECONNREFUSED  |
 * | `icmp type host-unreachable`                   | EHOSTUNREACH  |
 * | `icmp type host-prohibited` / `admin-prohibited` | EHOSTUNREACH |
 * | `icmp type net-unreachable` / `net-prohibited` | ENETUNREACH   |
 * | `icmp type prot-unreachable`                   | ENOPROTOOPT   |
 * | `drop`                                         | no answer (connect timeout) |
 * | `ip route add unreachable X/32`                | EHOSTUNREACH  |
 * | `ip route add prohibit X/32`                   | EACCES        |
 * | `ip route add blackhole X/32`                  | EINVAL        |
 * | `ip route add throw X/32`, no route at all     | ENETUNREACH   |
 *
 * Tests that need this must skip (with the printed reason) when
 * {@link isNetnsAvailable} says no: never fake the condition.
 */
import { execFileSync, spawn } from 'node:child_process';

export type NetnsAvailability = { ok: true } | { ok: false; reason: string };

let cached: NetnsAvailability | undefined;

/**
 * Whether unprivileged user+net namespaces, `ip` and a working nf_tables are available
 * (runs `unshare -rn` once; the answer is cached for the process).
 */
export function isNetnsAvailable(): NetnsAvailability {
  if (cached !== undefined) return cached;
  cached = probeAvailability();
  return cached;
}

function probeAvailability(): NetnsAvailability {
  const run = (cmd: string, args: string[]): string | undefined => {
    try {
      execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
      return undefined;
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      return (e.stderr?.toString().trim() || e.message).split('\n')[0];
    }
  };
  const unshare = run('unshare', ['-rn', 'true']);
  if (unshare !== undefined)
    return { ok: false, reason: `unshare -rn failed (user namespaces unavailable?): ${unshare}` };
  for (const bin of ['ip', 'nft']) {
    const which = run('sh', ['-c', `command -v ${bin}`]);
    if (which !== undefined) {
      return {
        ok: false,
        reason: `the '${bin}' binary is missing (Debian: apt-get install -y nftables iproute2)`,
      };
    }
  }
  const inside = run('unshare', [
    '-rn',
    'sh',
    '-ec',
    'ip link set lo up; nft add table inet og_probe; nft add chain inet og_probe c "{ type filter hook input priority 0; }"; nft add rule inet og_probe c tcp dport 9 drop',
  ]);
  if (inside !== undefined)
    return { ok: false, reason: `nf_tables does not work inside a user+net namespace: ${inside}` };
  return { ok: true };
}

export interface RunInNetnsOptions {
  /** Shell lines run (with `sh -e`) inside the namespace after `ip link set lo up`. */
  setup?: readonly string[];
  /** Path of a .ts/.js file run with `process.execPath` inside the namespace. */
  script: string;
  args?: readonly string[];
  /** Extra environment for the script (added to the current one). */
  env?: Readonly<Record<string, string>>;
  /** The whole run is killed after this. Default 20 000 ms. */
  timeoutMs?: number;
}

export class NetnsRunError extends Error {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  constructor(message: string, stdout: string, stderr: string, exitCode: number | null) {
    super(message);
    this.name = 'NetnsRunError';
    this.stdout = stdout;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/**
 * Runs `script` inside a fresh user+net namespace and resolves to its stdout parsed as
 * JSON (the whole stdout, or failing that its last non-empty line). Rejects with a
 * {@link NetnsRunError} (carrying stdout/stderr) when setup or the script fails, the
 * output is not JSON, or `timeoutMs` passes.
 */
export function runInNetns<T = unknown>(opts: RunInNetnsOptions): Promise<T> {
  const shell = ['ip link set lo up', ...(opts.setup ?? []), 'exec "$0" "$@"'].join('\n');
  const child = spawn(
    'unshare',
    ['-rn', '--', 'sh', '-ec', shell, process.execPath, opts.script, ...(opts.args ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new NetnsRunError(`cannot start unshare: ${err.message}`, stdout, stderr, null));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new NetnsRunError(`netns run timed out after ${timeoutMs} ms`, stdout, stderr, code));
        return;
      }
      if (code !== 0) {
        reject(new NetnsRunError(`netns run exited with ${code}: ${stderr.trim()}`, stdout, stderr, code));
        return;
      }
      const parsed = parseJsonOutput(stdout);
      if (parsed.ok) resolve(parsed.value as T);
      else
        reject(
          new NetnsRunError(`netns script output is not JSON: ${stdout.slice(0, 200)}`, stdout, stderr, code),
        );
    });
  });
}

function parseJsonOutput(out: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(out) };
  } catch {
    const last = out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .at(-1);
    if (last === undefined) return { ok: false };
    try {
      return { ok: true, value: JSON.parse(last) };
    } catch {
      return { ok: false };
    }
  }
}

/** Addresses that exist only inside the namespaces these helpers set up. */
export const NETNS = {
  /** Put on `lo` by {@link netnsSetup.addAddress}; target of the nft rules. */
  v4: '198.18.0.1',
  v6: 'fd00:0:0:6f67::1',
  /** Free for route entries (`unreachable`, `prohibit`, …): one per route. */
  v4Route: (n: number): string => `198.18.1.${n}`,
  v6Route: (n: number): string => `fd00:0:0:6f68::${n.toString(16)}`,
} as const;

/** nft reject variants, as nft spells them after `reject with`. */
export type RejectWith =
  | 'tcp reset'
  | `icmp type ${'host-unreachable' | 'net-unreachable' | 'port-unreachable' | 'prot-unreachable' | 'admin-prohibited' | 'host-prohibited' | 'net-prohibited'}`
  | `icmpv6 type ${'no-route' | 'admin-prohibited' | 'addr-unreachable' | 'port-unreachable' | 'policy-fail' | 'reject-route'}`;

const TABLE = 'inet og';

/** Builders of `setup` lines for {@link runInNetns}. */
export const netnsSetup = {
  /** Adds an address to `lo` (IPv6 without duplicate address detection). */
  addAddress(addr: string): string {
    return addr.includes(':') ? `ip -6 addr add ${addr}/128 dev lo nodad` : `ip addr add ${addr}/32 dev lo`;
  },
  /** Creates table `inet og` with an `input` filter chain; call once before `rule`/`reject`/`drop`. */
  nftInit(): string[] {
    return [
      `nft add table ${TABLE}`,
      `nft add chain ${TABLE} input '{ type filter hook input priority 0; }'`,
    ];
  },
  /** Adds a raw rule to the input chain, e.g. `ip daddr 198.18.0.1 tcp dport 80 counter drop`. */
  rule(rule: string): string {
    return `nft add rule ${TABLE} input ${rule}`;
  },
  /** Rejects TCP SYNs to addr:port with the given reply. */
  reject(addr: string, port: number, how: RejectWith): string {
    return netnsSetup.rule(
      `${addr.includes(':') ? 'ip6' : 'ip'} daddr ${addr} tcp dport ${port} reject with ${how}`,
    );
  },
  /** Silently drops TCP packets to addr:port (a connect timeout). */
  drop(addr: string, port: number): string {
    return netnsSetup.rule(`${addr.includes(':') ? 'ip6' : 'ip'} daddr ${addr} tcp dport ${port} drop`);
  },
  /** `ip route add <type> addr/32` (or /128). */
  route(type: 'unreachable' | 'prohibit' | 'blackhole' | 'throw', addr: string): string {
    return addr.includes(':') ? `ip -6 route add ${type} ${addr}/128` : `ip route add ${type} ${addr}/32`;
  },
  /** Sets a per-namespace sysctl, e.g. `sysctl('net.ipv4.tcp_syn_retries', 1)`. */
  sysctl(key: string, value: string | number): string {
    return `sysctl -qw ${key}=${value}`;
  },
};
