// ICMP rejects, drops and route types produced by the kernel in a network
// namespace the test creates (unshare -rn): the sidecar runs inside it and must
// name each cause. Skipped, with the reason printed, where the kernel or tools
// do not allow user network namespaces or nftables.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isNetnsAvailable, NETNS, runInNetns, netnsSetup as S } from '../support/netns.ts';

const netns = isNetnsAvailable();
if (!netns.ok) console.warn(`[netns-causes] skipped: ${netns.reason}`);

const script = fileURLToPath(new URL('../support/netns-sidecar.ts', import.meta.url));
type Results = Record<string, { status: number; error: string; ms: number }>;

describe.skipIf(!netns.ok)('kernel-level failures inside a test network namespace', () => {
  it('names each ICMP reject, a silent drop and each route type with its RFC 9209 cause', async () => {
    const v4 = NETNS.v4;
    const v6 = NETNS.v6;
    const cases: [id: string, host: string, port: number, setup: string[], cause: string][] = [
      ['tcp-reset', v4, 81, [S.reject(v4, 81, 'tcp reset')], 'connection_refused'],
      ['port-unreachable', v4, 82, [S.reject(v4, 82, 'icmp type port-unreachable')], 'connection_refused'],
      [
        'host-unreachable',
        v4,
        83,
        [S.reject(v4, 83, 'icmp type host-unreachable')],
        'destination_ip_unroutable',
      ],
      [
        'net-unreachable',
        v4,
        84,
        [S.reject(v4, 84, 'icmp type net-unreachable')],
        'destination_ip_unroutable',
      ],
      ['drop', v4, 85, [S.drop(v4, 85)], 'connection_timeout'],
      [
        'route-unreachable',
        NETNS.v4Route(1),
        80,
        [S.route('unreachable', NETNS.v4Route(1))],
        'destination_ip_unroutable',
      ],
      [
        'route-prohibit',
        NETNS.v4Route(2),
        80,
        [S.route('prohibit', NETNS.v4Route(2))],
        'destination_ip_prohibited',
      ],
      [
        'route-blackhole',
        NETNS.v4Route(3),
        80,
        [S.route('blackhole', NETNS.v4Route(3))],
        'destination_ip_unroutable',
      ],
      ['no-route', NETNS.v4Route(9), 80, [], 'destination_ip_unroutable'],
      [
        'v6-admin-prohibited',
        v6,
        86,
        [S.reject(v6, 86, 'icmpv6 type admin-prohibited')],
        'destination_ip_prohibited',
      ],
      [
        'v6-route-unreachable',
        NETNS.v6Route(1),
        80,
        [S.route('unreachable', NETNS.v6Route(1))],
        'destination_ip_unroutable',
      ],
    ];
    const setup = [S.addAddress(v4), S.addAddress(v6), ...S.nftInit(), ...cases.flatMap((c) => c[3])];
    const targets = cases.map(([id, host, port]) => ({
      id,
      host,
      port,
      connectTimeout: id === 'drop' ? '300ms' : '3s',
    }));
    const results = await runInNetns<Results>({
      setup,
      script,
      args: [JSON.stringify(targets)],
      timeoutMs: 30_000,
    });
    for (const [id, , , , cause] of cases) {
      expect({ id, ...results[id] }).toMatchObject({ id, status: 531, error: cause });
    }
    // A drop is a real connect timeout: answered when the 300 ms budget ends.
    expect(results.drop?.ms).toBeGreaterThanOrEqual(295);
    expect(results.drop?.ms).toBeLessThan(450);
  });
});
