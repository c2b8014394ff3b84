// The pure half of `originguard diagnose`: TARGET parsing, what an Origin's
// sidecar would probe, the verdict from steps (the sidecar's own choice of
// cause and status), whose view leads from where, exit codes and rendering.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Cause, Phase } from '../../src/api/causes.ts';
import { validateOrigin } from '../../src/api/validate.ts';
import { diagnosisOf, EXIT, exitCodeOf } from '../../src/diagnose/diagnosis.ts';
import {
  clusterOnlyHost,
  type Plan,
  parseTarget,
  planForAddress,
  planForOrigin,
} from '../../src/diagnose/plan.ts';
import { ANSI, PLAIN, renderDiagnosis } from '../../src/diagnose/render.ts';
import type { SidecarView, Step } from '../../src/diagnose/schema.ts';
import type { Vantage } from '../../src/diagnose/vantage.ts';
import { probeVerdict } from '../../src/diagnose/verdict.ts';
import { connectFailure, statusFor } from '../../src/upstream/classify.ts';
import type { Attempt } from '../../src/upstream/failure.ts';

const originOf = (spec: Record<string, unknown>, namespace = 'web') => {
  const v = validateOrigin({
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'Origin',
    metadata: { name: 'shop', namespace },
    spec: { selector: { matchLabels: { app: 'shop' } }, listen: { port: 8080 }, ...spec },
  });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return v.value;
};

describe('parseTarget', () => {
  it.each([
    [
      'https://shop.example:8443/health?x=1',
      {
        kind: 'url',
        tls: true,
        host: 'shop.example',
        port: 8443,
        path: '/health?x=1',
        authority: 'shop.example:8443',
      },
    ],
    [
      'http://shop.example',
      { kind: 'url', tls: false, host: 'shop.example', port: 80, path: '/', authority: 'shop.example' },
    ],
    ['https://[::1]/', { kind: 'url', tls: true, host: '::1', port: 443, authority: '[::1]' }],
    ['shop.example:8080', { kind: 'hostport', host: 'shop.example', port: 8080 }],
    ['[fd00::1]:80', { kind: 'hostport', host: 'fd00::1', port: 80 }],
    ['origin/shop', { kind: 'origin', name: 'shop' }],
    ['origins/shop', { kind: 'origin', name: 'shop' }],
    ['origin.edge.originguard.dev/shop-1', { kind: 'origin', name: 'shop-1' }],
  ])('reads %s', (input, expected) => {
    expect(parseTarget(input)).toMatchObject(expected);
  });

  it.each([
    ['shop.example', 'expected a URL'],
    ['shop.example:0', 'port must be 1-65535'],
    ['https://user:pw@shop.example/', 'credentials in the URL are not sent'],
    ['origin/', 'is not an Origin name'],
  ])('refuses %s, saying why', (input, message) => {
    expect(() => parseTarget(input)).toThrow(message);
  });
});

describe('what an Origin sidecar would probe', () => {
  it('sends the hostHeader override, else a host the Origin serves, else host:port', () => {
    const flags = {};
    const none = () => undefined;
    const base = { upstream: { host: 'origin.web.svc', port: 80 } };
    expect(planForOrigin('o', originOf(base), flags, none).hostHeader).toBe('origin.web.svc:80');
    expect(
      planForOrigin('o', originOf({ ...base, hosts: ['*.shop.example', 'www.shop.example'] }), flags, none)
        .hostHeader,
    ).toBe('www.shop.example');
    expect(
      planForOrigin(
        'o',
        originOf({ ...base, upstream: { ...base.upstream, hostHeader: 'internal' } }),
        flags,
        none,
      ).hostHeader,
    ).toBe('internal');
    expect(planForOrigin('o', originOf(base), { hostHeader: 'cli' }, none).hostHeader).toBe('cli');
  });

  it('takes timeouts, TLS, extra addresses and backups from the spec, and notes what flags override', () => {
    const m = originOf({
      upstream: {
        host: 'shop.example',
        port: 443,
        addresses: ['10.0.0.5'],
        tls: { enabled: true, serverName: 'www.shop.example', caFile: '/etc/ca/ca.pem' },
        backups: [{ host: 'backup.example', port: 80 }],
      },
      timeouts: { connect: '2s', response: '10s' },
      errorResponse: { statusProfile: 'Edgio' },
    });
    const plan = planForOrigin('origin/shop', m, { insecure: true }, () => undefined);
    expect(plan).toMatchObject({
      origin: { namespace: 'web', name: 'shop' },
      connectTimeoutMs: 2000,
      responseTimeoutMs: 10_000,
      profile: 'Edgio',
      targets: [
        {
          host: 'shop.example',
          port: 443,
          extraAddresses: ['10.0.0.5'],
          tls: { servername: 'www.shop.example', trust: 'system roots', insecure: true },
        },
        { host: 'backup.example', port: 80, extraAddresses: [] },
      ],
    });
    expect(plan.targets[1]?.tls).toBeUndefined();
    expect(plan.notes).toEqual([
      'tls.caFile /etc/ca/ca.pem is a path inside the sidecar and cannot be read here: verifying against the system roots (pass --ca-file)',
      '--insecure: certificate failures are shown but not enforced, unlike the sidecar',
    ]);
  });

  it('knows the names only cluster DNS answers', () => {
    expect(clusterOnlyHost('shop.web.svc.cluster.local', undefined)).toBe(true);
    expect(clusterOnlyHost('shop.web.svc', undefined)).toBe(true);
    expect(clusterOnlyHost('shop', undefined)).toBe(false);
    expect(clusterOnlyHost('shop', 'web')).toBe(true);
    expect(clusterOnlyHost('shop.web', 'web')).toBe(true);
    expect(clusterOnlyHost('shop.example', 'web')).toBe(false);
    expect(clusterOnlyHost('10.0.0.1', 'web')).toBe(false);
  });
});

const plan = (over: Partial<Plan> = {}): Plan => ({
  ...planForAddress('shop.example:80', parseTarget('shop.example:80'), {}),
  ...over,
});

function step(
  phase: Step['phase'],
  address: string | null,
  cause: Cause | null,
  over: Partial<Step> = {},
): Step {
  const failedIn: Record<Step['phase'], Phase> = { dns: 'dns', tcp: 'connect', tls: 'tls', http: 'request' };
  return {
    phase,
    target: 0,
    address,
    ok: cause === null,
    cause,
    failedIn: cause === null ? null : failedIn[phase],
    code: cause === null ? null : 'E',
    elapsedMs: 1,
    detail: cause ?? 'ok',
    ...over,
  };
}

const resolved = step('dns', null, null);
const CONNECT_CAUSES: Cause[] = [
  'connection_refused',
  'connection_timeout',
  'destination_ip_unroutable',
  'destination_ip_prohibited',
  'connection_terminated',
];

describe('the verdict of a probe', () => {
  it('names the cause the sidecar would report for the same attempts, and its status (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CONNECT_CAUSES), { minLength: 1, maxLength: 6 }), (causes) => {
        const steps = [resolved, ...causes.map((c, i) => step('tcp', `10.0.0.${i + 1}:80`, c))];
        const attempts: Attempt[] = causes.map((cause, i) => ({
          cause,
          phase: 'connect',
          code: 'E',
          address: `10.0.0.${i + 1}:80`,
          port: 80,
          target: 0,
          elapsedMs: 1,
          message: cause,
        }));
        const sidecar = connectFailure(attempts, 1);
        const v = probeVerdict(plan(), steps);
        expect(v.reachable).toBe(false);
        expect(v.verdict.cause).toBe(sidecar.cause);
        expect(v.verdict.statusCode).toBe(statusFor(sidecar, 'Uniform'));
      }),
    );
  });

  it.each([
    [step('dns', null, 'dns_error', { rcode: 'NXDOMAIN' }), 537],
    [step('tls', '10.0.0.1:80', 'tls_certificate_error'), 533],
    [step('tcp', '10.0.0.1:80', 'connection_refused'), 531],
  ])('answers the Edgio profile code for %j', (failed, status) => {
    const tcpOk = step('tcp', '10.0.0.1:80', null);
    const steps =
      failed.phase === 'dns'
        ? [failed]
        : failed.phase === 'tls'
          ? [resolved, tcpOk, failed]
          : [resolved, failed];
    const p = plan({
      profile: 'Edgio',
      ...(failed.phase === 'tls'
        ? {
            targets: [
              {
                host: 'shop.example',
                port: 80,
                extraAddresses: [],
                tls: { trust: 'system roots', insecure: false },
              },
            ],
          }
        : {}),
    });
    expect(probeVerdict(p, steps).verdict.statusCode).toBe(status);
  });

  it('is reachable with the origin’s own status once the request is answered, and warns about a 5xx', () => {
    const steps = [
      resolved,
      step('tcp', '10.0.0.1:80', null),
      step('http', '10.0.0.1:80', null, {
        http: { method: 'GET', path: '/', host: 'h', status: 503, ttfbMs: 1, bytes: 0, truncated: false },
      }),
    ];
    const v = probeVerdict(plan(), steps);
    expect(v).toMatchObject({ reachable: true, verdict: { cause: null, statusCode: 503 } });
    expect(v.verdict.warnings.map((w) => w.summary)).toEqual([
      'the origin answers 503: the connection works, the application fails',
    ]);
  });
});

const sidecars = (reachable: string, cause: string | null): SidecarView => ({
  reachable,
  cause,
  hint: cause === null ? null : 'check the origin',
  podsSummary: reachable === 'True' ? '2/2' : '0/2',
  statusCode: cause === null ? null : 531,
  pods: [
    {
      pod: 'edge-a',
      health: reachable === 'True' ? 'Reachable' : 'Unreachable',
      cause,
      since: '2026-01-01T00:00:00Z',
      failures: 3,
      lastFailure: null,
      hint: null,
    },
  ],
});
const outside = (view: SidecarView | null): Vantage => ({
  inCluster: false,
  fromCluster: view !== null,
  sidecars: view,
  notes: [],
});
const clusterPlan = (host: string) => ({
  ...plan(),
  input: 'origin/shop',
  origin: { namespace: 'web', name: 'shop' },
  targets: [{ host, port: 80, extraAddresses: [] }],
});
const at = new Date('2026-01-01T00:00:00Z');

describe('whose view leads, from where', () => {
  const refused = [resolved, step('tcp', '10.0.0.1:80', 'connection_refused')];
  const answered = [
    resolved,
    step('tcp', '10.0.0.1:80', null),
    step('http', '10.0.0.1:80', null, {
      http: { method: 'GET', path: '/', host: 'h', status: 200, ttfbMs: 1, bytes: 2, truncated: false },
    }),
  ];
  const nx = [
    step('dns', '10.96.0.10:53', 'dns_error', { rcode: 'NXDOMAIN' }),
    step('dns', null, 'dns_error', { rcode: 'NXDOMAIN' }),
  ];

  it('from outside the cluster, puts the failing sidecars first and says this machine sees the same', () => {
    const d = diagnosisOf(
      clusterPlan('shop.example'),
      refused,
      outside(sidecars('False', 'connection_refused')),
      at,
      1,
    );
    expect(d.reachable).toBe(false);
    expect(d.verdict).toMatchObject({ source: 'sidecars', cause: 'connection_refused', statusCode: 531 });
    expect(d.verdict.summary).toMatch(
      /^the Origin's sidecars report connection_refused on 1 pod\(s\) \(0\/2 pods reachable\); this machine sees the same: /,
    );
    expect(d.verdict.evidence[0]).toBe(
      'pod edge-a: Unreachable connection_refused since 2026-01-01T00:00:00Z',
    );
  });

  it('when this machine reaches what the pods cannot, blames the path from the pods', () => {
    const d = diagnosisOf(
      clusterPlan('shop.example'),
      answered,
      outside(sidecars('False', 'connection_timeout')),
      at,
      1,
    );
    expect(d.reachable).toBe(false);
    expect(d.verdict.summary).toContain(
      'yet this machine reaches the origin (200): the problem is the path from the pods',
    );
  });

  it('does not blame DNS for a cluster name it cannot resolve from outside: the pods reach it', () => {
    const d = diagnosisOf(
      clusterPlan('shop-origin.web.svc.cluster.local'),
      nx,
      outside(sidecars('True', null)),
      at,
      1,
    );
    expect(d.reachable).toBe(true);
    expect(d.verdict.cause).toBeNull();
    expect(d.verdict.warnings[0]?.summary).toBe('not checked from this machine: it is outside the cluster');
    expect(d.vantage.limits).toContain(
      'this machine is outside the cluster: it cannot resolve cluster-internal names (shop-origin.web.svc.cluster.local), and Pod and Service IPs are usually not routable from it',
    );
    expect(exitCodeOf(d)).toBe(EXIT.reachable);
  });

  it('cannot tell, and says so, when it is blind and no sidecar reports', () => {
    const d = diagnosisOf(clusterPlan('shop-origin'), nx, outside(sidecars('Unknown', null)), at, 1);
    expect(d).toMatchObject({ reachable: false, verdict: { cause: null, source: 'none' } });
    expect(d.verdict.summary).toBe(
      'cannot tell from this machine: shop-origin is a cluster-internal name it cannot resolve, and no sidecar reports on this origin yet',
    );
    expect(exitCodeOf(d)).toBe(EXIT.inconclusive);
  });

  it('inside the cluster, trusts its own probe and warns when the pods disagree', () => {
    const d = diagnosisOf(
      clusterPlan('shop.example'),
      answered,
      { ...outside(sidecars('False', 'connection_timeout')), inCluster: true },
      at,
      1,
    );
    expect(d).toMatchObject({ reachable: true, verdict: { source: 'probe' } });
    expect(d.verdict.warnings[0]?.summary).toContain('while this pod reaches the origin');
  });
});

describe('exit codes', () => {
  const withVerdict = (cause: string | null, failedIn: string | null, reachable = false) =>
    exitCodeOf({
      ...diagnosisOf(plan(), [], outside(null), at, 1),
      reachable,
      verdict: { ...diagnosisOf(plan(), [], outside(null), at, 1).verdict, cause, failedIn },
    });
  it.each([
    ['dns_error', 'dns', EXIT.dns],
    ['dns_timeout', 'dns', EXIT.dns],
    ['connection_refused', 'connect', EXIT.refused],
    ['connection_timeout', 'connect', EXIT.connectTimeout],
    ['connection_timeout', 'tls', EXIT.connectTimeout],
    ['destination_ip_unroutable', 'connect', EXIT.unroutable],
    ['destination_ip_prohibited', 'connect', EXIT.unroutable],
    ['connection_terminated', 'connect', EXIT.reset],
    ['connection_terminated', 'request', EXIT.response],
    ['tls_certificate_error', 'tls', EXIT.tls],
    ['tls_protocol_error', 'tls', EXIT.tls],
    ['tls_alert_received', 'tls', EXIT.tls],
    ['http_response_timeout', 'request', EXIT.response],
    ['http_protocol_error', 'request', EXIT.response],
  ])('%s in %s exits %i', (cause, failedIn, code) => {
    expect(withVerdict(cause, failedIn)).toBe(code);
  });
  it('exits 0 when reachable and 87 when it cannot tell', () => {
    expect(withVerdict(null, null, true)).toBe(0);
    expect(withVerdict(null, null)).toBe(87);
  });
  it('keeps each class on its own code, apart from sysexits', () => {
    const codes = Object.values(EXIT);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe('rendering', () => {
  it('colours with ANSI only when asked, and shows the cause, the answer and the docs link', () => {
    const p = plan();
    const d = diagnosisOf(
      p,
      [resolved, step('tcp', '10.0.0.1:80', 'connection_refused')],
      outside(null),
      at,
      1,
    );
    const plain = renderDiagnosis(d, p, PLAIN);
    expect(plain).not.toContain('\u001b[');
    expect(plain).toContain('✗ connection_refused → the sidecar answers 531');
    expect(plain).toContain(
      'Docs: https://github.com/originguard/originguard/blob/main/docs/causes.md#connection_refused',
    );
    expect(renderDiagnosis(d, p, ANSI)).toContain('\u001b[31m');
  });
});
