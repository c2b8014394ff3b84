// The diagnosis of kernel-level failures, produced for real inside a network
// namespace the test creates (unshare -rn): each ICMP reject, each route type,
// a silent drop, and one of two addresses dropping while the other answers.
// Skipped, with the reason printed, where user namespaces or nftables are missing.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isNetnsAvailable, NETNS, runInNetns, netnsSetup as S } from '../support/netns.ts';

const netns = isNetnsAvailable();
if (!netns.ok) console.warn(`[netns-diagnose] skipped: ${netns.reason}`);

const script = fileURLToPath(new URL('../support/netns-diagnose.ts', import.meta.url));

interface Result {
  reachable: boolean;
  cause: string | null;
  statusCode: number | null;
  summary: string;
  fix: string | null;
  tcp: string[];
  warnings: string[];
}

describe.skipIf(!netns.ok)('diagnose inside a test network namespace', () => {
  it('names each ICMP reject and route type per address, with the sidecar cause, and what to check', async () => {
    const v4 = NETNS.v4;
    const v6 = NETNS.v6;
    const cases: [id: string, host: string, port: number, setup: string[], cause: string, tcp: RegExp][] = [
      [
        'port-unreachable',
        v4,
        82,
        [S.reject(v4, 82, 'icmp type port-unreachable')],
        'connection_refused',
        /refused \(ECONNREFUSED\)/,
      ],
      [
        'host-unreachable',
        v4,
        83,
        [S.reject(v4, 83, 'icmp type host-unreachable')],
        'destination_ip_unroutable',
        /unreachable \(EHOSTUNREACH\)/,
      ],
      [
        'net-unreachable',
        v4,
        84,
        [S.reject(v4, 84, 'icmp type net-unreachable')],
        'destination_ip_unroutable',
        /unreachable \(ENETUNREACH\)/,
      ],
      ['drop', v4, 85, [S.drop(v4, 85)], 'connection_timeout', /timeout \(no connection within 300ms\)/],
      [
        'route-unreachable',
        NETNS.v4Route(1),
        80,
        [S.route('unreachable', NETNS.v4Route(1))],
        'destination_ip_unroutable',
        /EHOSTUNREACH/,
      ],
      [
        'route-prohibit',
        NETNS.v4Route(2),
        80,
        [S.route('prohibit', NETNS.v4Route(2))],
        'destination_ip_prohibited',
        /prohibited \(EACCES\)/,
      ],
      [
        'route-blackhole',
        NETNS.v4Route(3),
        80,
        [S.route('blackhole', NETNS.v4Route(3))],
        'destination_ip_unroutable',
        /EINVAL/,
      ],
      ['no-route', NETNS.v4Route(9), 80, [], 'destination_ip_unroutable', /ENETUNREACH/],
      [
        'v6-admin-prohibited',
        v6,
        86,
        [S.reject(v6, 86, 'icmpv6 type admin-prohibited')],
        'destination_ip_prohibited',
        /prohibited \(EACCES\)/,
      ],
    ];
    const setup = [S.addAddress(v4), S.addAddress(v6), ...S.nftInit(), ...cases.flatMap((c) => c[3])];
    const targets = cases.map(([id, host, port]) => ({
      id,
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
      connectTimeoutMs: id === 'drop' ? 300 : 3000,
    }));
    const results = await runInNetns<Record<string, Result>>({
      setup,
      script,
      args: [JSON.stringify(targets)],
      timeoutMs: 60_000,
    });
    for (const [id, , , , cause, tcp] of cases) {
      const r = results[id];
      expect({ id, cause: r?.cause, statusCode: r?.statusCode }).toEqual({ id, cause, statusCode: 531 });
      expect(r?.tcp[0], id).toMatch(tcp);
    }
    expect(results['route-prohibit']?.summary).toBe(
      `connections to ${NETNS.v4Route(2)}:80 are administratively prohibited (EACCES)`,
    );
    expect(results['no-route']?.summary).toBe(`there is no route to ${NETNS.v4Route(9)}:80 (ENETUNREACH)`);
    expect(results['no-route']?.fix).toContain(`ip route get ${NETNS.v4Route(9)}`);
    expect(Number(results.drop?.tcp[0]?.split(' ').at(-1))).toBeGreaterThanOrEqual(295);
  });

  it('says 1 of 2 addresses drops connections while the other answers, and what it costs when it is tried first', async () => {
    const alive = NETNS.v4;
    const dead = '198.18.0.2';
    const results = await runInNetns<Record<string, Result>>({
      setup: [S.addAddress(alive), S.addAddress(dead), ...S.nftInit(), S.drop(dead, 8080)],
      script,
      args: [
        JSON.stringify([
          {
            id: 'two',
            url: 'http://shop.test:8080/',
            connectTimeoutMs: 300,
            dns: { 'shop.test': [dead, alive] },
            serve: { host: alive, port: 8080 },
          },
        ]),
      ],
      timeoutMs: 30_000,
    });
    const r = results.two;
    expect(r?.reachable).toBe(true);
    expect(r?.tcp.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      `${dead}:8080 timeout`,
      `${alive}:8080 connected`,
    ]);
    expect(r?.warnings).toEqual([
      `1 of 2 addresses of shop.test drops connections (the other answers): a stale DNS record or a dead instance | remove ${dead}:8080 from DNS (or spec.upstream.addresses), or bring that instance back; the sidecar tries ${dead}:8080 first, so its first connection waits 250 ms before racing the next address, and later ones try it last`,
    ]);
  });
});
