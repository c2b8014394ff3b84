import { describe, expect, it } from 'vitest';
import { withEnv } from '../../src/flags.ts';
import { readOptions } from '../../src/operator/command.ts';
import {
  DEFAULT_DENIED_NETWORKS,
  namespaceAllowed,
  networkList,
  parseSelector,
  probeRecord,
  probeWanted,
  refusal,
} from '../../src/operator/probe-policy.ts';

const denied = networkList(DEFAULT_DENIED_NETWORKS, 'origin-probe-denied-networks');

describe("the operator probe's policy", () => {
  it('never probes loopback, link-local (cloud metadata) or unspecified addresses by default, IPv4-mapped too', () => {
    for (const a of [
      '127.0.0.1',
      '127.3.4.5',
      '::1',
      '169.254.169.254',
      'fe80::1',
      '0.0.0.0',
      '::',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
    ])
      expect(refusal(a, denied), a).toMatch(/network the operator does not probe/);
    for (const a of ['10.0.0.5', '192.0.2.10', '2001:db8::1', '::ffff:10.1.2.3'])
      expect(refusal(a, denied), a).toBeUndefined();
    expect(refusal('shop.example', denied)).toBe('not an IP address');
  });

  it('takes networks an operator adds, and refuses what is not a CIDR, naming the flag', () => {
    const list = networkList(['10.0.0.0/8', 'fd00::/8'], 'origin-probe-denied-networks');
    expect(refusal('10.9.8.7', list)).toBeDefined();
    expect(refusal('fd12::1', list)).toBeDefined();
    expect(refusal('11.0.0.1', list)).toBeUndefined();
    for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'shop/8'])
      expect(() => networkList([bad], 'origin-probe-denied-networks')).toThrow(
        `--origin-probe-denied-networks: "${bad}" is not a CIDR`,
      );
  });

  it('reads namespace selectors as kubectl -l writes them, and refuses others', () => {
    expect(parseSelector('', 'f')).toBeUndefined();
    expect(parseSelector('originguard.dev/operator-probe=enabled, team!=ads,edge,!legacy', 'f')).toEqual({
      matchLabels: { 'originguard.dev/operator-probe': 'enabled' },
      matchExpressions: [
        { key: 'team', operator: 'NotIn', values: ['ads'] },
        { key: 'edge', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    });
    expect(() => parseSelector('a in (b)', 'origin-probe-namespace-selector')).toThrow(
      '--origin-probe-namespace-selector: cannot read "a in (b)"',
    );
  });

  it('lets namespaces opt in by label when a selector is set, and says why not', () => {
    const policy = { enabled: true, namespaceSelector: parseSelector('probe=on', 'f') };
    expect(namespaceAllowed(policy, 'shop', { probe: 'on' })).toEqual({ allowed: true });
    expect(namespaceAllowed(policy, 'ads', {})).toEqual({
      allowed: false,
      why: 'namespace ads has not opted in (its labels do not match --origin-probe-namespace-selector)',
    });
    expect(namespaceAllowed({ enabled: true, namespaceSelector: undefined }, 'ads', undefined).allowed).toBe(
      true,
    );
    expect(namespaceAllowed({ enabled: false, namespaceSelector: undefined }, 'ads', {})).toEqual({
      allowed: false,
      why: 'the operator runs with --no-origin-probe',
    });
  });

  it('probes again when the failure changes shape or the refresh interval passed, not on every status', () => {
    expect(probeWanted(undefined, '3/10/connection_timeout', 0, 300_000)).toBe(true);
    const last = { at: 1_000, shape: '3/10/connection_timeout' };
    expect(probeWanted(last, '3/10/connection_timeout', 2_000, 300_000)).toBe(false);
    expect(probeWanted(last, '4/10/connection_timeout', 2_000, 300_000)).toBe(true);
    expect(probeWanted(last, '3/10/connection_timeout', 301_000, 300_000)).toBe(true);
  });

  it('records a probe bounded: clipped summary, at most 16 step lines of 256 characters, the request answered', () => {
    const r = probeRecord(
      { from: 'op-0', time: new Date('2026-11-29T12:00:00Z'), reason: 'Requested', requestId: 'abc' },
      {
        probed: true,
        ok: false,
        cause: 'connection_refused',
        statusCode: 531,
        summary: 'x'.repeat(2000),
        steps: Array.from({ length: 20 }, (_, i) => `tcp 10.0.0.${i}:80: refused ${'y'.repeat(300)}`),
        limits: ['not probed: 127.0.0.1:80 (loopback)'],
      },
    );
    expect(r).toMatchObject({
      from: 'op-0',
      result: 'Unreachable',
      cause: 'connection_refused',
      statusCode: 531,
      requestId: 'abc',
    });
    expect(r.summary.length).toBe(1024);
    expect(r.steps).toHaveLength(16);
    expect(Math.max(...r.steps.map((s) => s.length))).toBe(256);
    const not = probeRecord(
      { from: 'op-0', time: new Date(), reason: 'PodsFailing', requestId: undefined },
      { probed: false, why: 'namespace ads has not opted in' },
    );
    expect(not).toMatchObject({ result: 'NotProbed', summary: 'namespace ads has not opted in', steps: [] });
    expect(not).not.toHaveProperty('requestId');
  });

  it('reads its flags: on by default, off with --no-origin-probe or ORIGINGUARD_ORIGIN_PROBE=false', () => {
    const defaults = {
      'origin-probe': true,
      'origin-probe-namespace-selector': '',
      'origin-probe-min-interval': '30s',
      'origin-probe-refresh': '5m',
      'webhook-bind-address': '0',
      'health-probe-bind-address': '0',
      'metrics-bind-address': '0',
      'status-interval': '1s',
      'resync-period': '10m',
    };
    expect(readOptions(defaults).probe).toEqual({
      enabled: true,
      namespaceSelector: undefined,
      deniedNetworks: [...DEFAULT_DENIED_NETWORKS],
      minIntervalMs: 30_000,
      refreshMs: 300_000,
    });
    expect(readOptions({ ...defaults, 'origin-probe': false }).probe.enabled).toBe(false);
    const options = {
      'origin-probe': { type: 'boolean', default: true },
      'leader-elect': { type: 'boolean' },
    };
    expect(
      withEnv([], options, { ORIGINGUARD_ORIGIN_PROBE: 'false', ORIGINGUARD_LEADER_ELECT: 'false' }),
    ).toEqual(['--no-origin-probe']);
    expect(readOptions({ ...defaults, 'origin-probe-denied-networks': [''] }).probe.deniedNetworks).toEqual(
      [],
    );
    expect(() => readOptions({ ...defaults, 'origin-probe-min-interval': 'soon' })).toThrow(
      '--origin-probe-min-interval',
    );
  });
});
