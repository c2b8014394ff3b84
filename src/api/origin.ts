// The Origin API: the one source of truth for the spec's shape, its defaults,
// its descriptions (what `kubectl explain` shows) and its validation rules. The
// CRD in crds/ is generated from these schemas (npm run generate:crds), and the
// sidecar validates a standalone config file against the same schemas.
import { type Static, Type } from '@sinclair/typebox';
import { parseDuration } from './duration.ts';
import { HealthCheck } from './health-check.ts';
import { celIsDuration, duration, durationBetween, withRules } from './rules.ts';
import { ForwardedHeaders, RequestPolicy } from './traffic.ts';

export { type Rule, rulesOf } from './rules.ts';

export const GROUP = 'edge.originguard.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

const DNS_NAME_PATTERN =
  '^(\\*\\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$';
const UPSTREAM_HOST_PATTERN =
  '^([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\\.?|[0-9a-fA-F:.]+)$';
const IP_PATTERN = '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-fA-F:]+)$';

const port = (description: string) => Type.Integer({ description, minimum: 1, maximum: 65535 });

export const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({ description: 'Label key the requirement applies to.', minLength: 1, maxLength: 317 }),
    operator: Type.Union(
      [Type.Literal('In'), Type.Literal('NotIn'), Type.Literal('Exists'), Type.Literal('DoesNotExist')],
      {
        description: 'How the key relates to the values: In, NotIn, Exists or DoesNotExist.',
      },
    ),
    values: Type.Optional(
      Type.Array(Type.String({ maxLength: 63 }), {
        description: 'Values for In and NotIn; must be empty for Exists and DoesNotExist.',
        maxItems: 64,
      }),
    ),
  },
  { additionalProperties: false },
);

export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 63 }), {
        description: 'Labels a pod must carry, all of them, to be selected.',
      }),
    ),
    matchExpressions: Type.Optional(
      Type.Array(LabelSelectorRequirement, {
        description: 'Set-based requirements a pod must all meet to be selected.',
        maxItems: 32,
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "Which pods in the Origin's namespace serve edge traffic for it. The operator injects the sidecar into these pods when they are created. Unused by a standalone sidecar.",
  },
);
withRules(LabelSelector, [
  {
    rule: '(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)',
    message:
      'must set matchLabels or matchExpressions: an empty selector would select every pod in the namespace',
    check: (s: { matchLabels?: object; matchExpressions?: unknown[] }) =>
      Object.keys(s.matchLabels ?? {}).length > 0 || (s.matchExpressions ?? []).length > 0,
  },
]);

export const Listen = Type.Object(
  {
    port: port('Port the sidecar listens on for edge traffic (1-65535).'),
    address: Type.String({
      description:
        'Address the sidecar binds for edge traffic: 0.0.0.0 (all IPv4), :: (all), or a specific IP.',
      pattern: IP_PATTERN,
      default: '0.0.0.0',
    }),
  },
  { additionalProperties: false, description: 'Where the sidecar accepts edge traffic for this Origin.' },
);

export const UpstreamTLS = Type.Object(
  {
    enabled: Type.Boolean({ description: 'Connect to the origin over TLS.', default: false }),
    serverName: Type.Optional(
      Type.String({
        description:
          'Name sent in SNI and checked against the certificate. Defaults to upstream.host when it is a name.',
        maxLength: 253,
      }),
    ),
    caBundle: Type.Optional(
      Type.String({
        description: "PEM certificates the origin's certificate must chain to, instead of the system roots.",
        maxLength: 65536,
      }),
    ),
    caFile: Type.Optional(
      Type.String({
        description:
          "Path, inside the sidecar, of a PEM file the origin's certificate must chain to (a mounted Secret or ConfigMap).",
        maxLength: 4096,
      }),
    ),
    insecureSkipVerify: Type.Boolean({
      description:
        'Accept any certificate. For diagnosis only: it hides tls_certificate_error and lets anyone impersonate the origin.',
      default: false,
    }),
  },
  { additionalProperties: false, description: 'TLS to the origin.' },
);
withRules(UpstreamTLS, [
  {
    rule: '!(has(self.caBundle) && has(self.caFile))',
    message: 'set caBundle or caFile, not both',
    check: (t: { caBundle?: string; caFile?: string }) =>
      !(t.caBundle !== undefined && t.caFile !== undefined),
  },
  {
    rule: 'self.enabled || !(has(self.serverName) || has(self.caBundle) || has(self.caFile))',
    message: 'serverName, caBundle and caFile need enabled: true',
    check: (t: { enabled?: boolean; serverName?: string; caBundle?: string; caFile?: string }) =>
      t.enabled === true ||
      (t.serverName === undefined && t.caBundle === undefined && t.caFile === undefined),
  },
]);

const upstreamHost = Type.String({
  description:
    'DNS name or IP address of the origin. 127.0.0.1 reaches an app in the same pod; a Service name (svc.namespace.svc.cluster.local) reaches a Service.',
  minLength: 1,
  maxLength: 253,
  pattern: UPSTREAM_HOST_PATTERN,
});

export const Backup = Type.Object(
  {
    host: upstreamHost,
    port: port('Port of the backup origin (1-65535).'),
    tls: Type.Optional(UpstreamTLS),
  },
  {
    additionalProperties: false,
    description: 'An origin tried, in order, when no address of the primary accepts a connection.',
  },
);

export const Upstream = Type.Object(
  {
    host: upstreamHost,
    port: port('Port of the origin (1-65535).'),
    tls: Type.Optional(UpstreamTLS),
    addresses: Type.Optional(
      Type.Array(Type.String({ pattern: IP_PATTERN, maxLength: 45 }), {
        description: 'Extra IP addresses of the origin, tried after the addresses host resolves to.',
        maxItems: 16,
      }),
    ),
    backups: Type.Optional(
      Type.Array(Backup, {
        description:
          'Backup origins to fail over to when no address of the primary accepts a connection. A request is never retried once it was sent.',
        maxItems: 4,
      }),
    ),
    hostHeader: Type.Optional(
      Type.String({
        description: "Host header sent to the origin. Default: the client's Host header is passed through.",
        maxLength: 253,
        pattern: '^[a-zA-Z0-9.:\\[\\]-]+$',
      }),
    ),
    connectAttempts: Type.Integer({
      description: 'Connection attempts per address before moving to the next address (1-5).',
      minimum: 1,
      maximum: 5,
      default: 1,
    }),
  },
  { additionalProperties: false, description: 'The origin the sidecar forwards edge traffic to.' },
);

export const Timeouts = Type.Object(
  {
    connect: duration(
      'Time allowed to resolve, connect and finish TLS with one origin address (Go duration, e.g. 5s).',
      '5s',
    ),
    response: duration(
      'Time allowed from sending the request to the first byte of the response; past it the sidecar answers 536.',
      '60s',
    ),
    idle: duration(
      "How long an idle kept-alive connection to the origin is kept. Keep it below the origin's own idle timeout.",
      '4s',
    ),
    streamIdle: duration(
      'Longest silence allowed once a response has started: between two chunks of a response body (Server-Sent Events, long polling, streaming), and in an upgraded connection (WebSocket) in both directions at once. Past it the stream or tunnel is closed. Keep it above the interval of the keep-alives the application sends.',
      '5m',
    ),
  },
  { additionalProperties: false, description: 'Timeouts towards the origin.', default: {} },
);
withRules(Timeouts, [
  durationBetween('connect', '1ms', '5m'),
  durationBetween('response', '1ms', '1h'),
  durationBetween('idle', '100ms', '10m'),
  durationBetween('streamIdle', '1ms', '24h'),
]);

/** An HTTP Upgrade protocol name (RFC 9110 §7.8): a token, optionally /version. */
const PROTOCOL_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+(/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$";

export const Upgrade = Type.Object(
  {
    protocols: Type.Optional(
      Type.Array(Type.String({ pattern: PROTOCOL_PATTERN, minLength: 1, maxLength: 64 }), {
        description:
          'Upgrade protocols (the Upgrade request header, e.g. websocket) the sidecar tunnels to the origin, compared case-insensitively. Absent: every protocol except h2c. Empty: none. h2c (cleartext HTTP/2) is tunnelled only when listed: a client could use it to talk past the proxy.',
        maxItems: 16,
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Protocol upgrades (WebSocket and others): the origin answers first, and only its 101 turns the connection into a tunnel.',
    default: {},
  },
);

export const OutlierDetection = Type.Object(
  {
    consecutiveFailures: Type.Integer({
      description:
        'Consecutive connection failures after which the origin is ejected: requests get 531 at once while one trial request at a time probes it (with healthCheck enabled, a check probes it instead).',
      minimum: 1,
      maximum: 1000,
      default: 5,
    }),
    baseEjectionTime: duration(
      'First ejection interval; each further ejection in a row adds one more (like Envoy).',
      '1s',
    ),
    maxEjectionTime: duration('Longest ejection interval.', '30s'),
  },
  {
    additionalProperties: false,
    description:
      'Fast failing of an origin that keeps failing to connect, so a blackholed origin does not hold every client for the full connect timeout.',
    default: {},
  },
);
withRules(OutlierDetection, [
  durationBetween('baseEjectionTime', '1ms', '10m'),
  durationBetween('maxEjectionTime', '1ms', '1h'),
  {
    rule: `!(${celIsDuration('baseEjectionTime')} && ${celIsDuration('maxEjectionTime')}) || duration(self.baseEjectionTime) <= duration(self.maxEjectionTime)`,
    message: 'baseEjectionTime must not exceed maxEjectionTime',
    fieldPath: '.baseEjectionTime',
    check: (o: { baseEjectionTime: string; maxEjectionTime: string }) =>
      !(parseDuration(o.baseEjectionTime) > parseDuration(o.maxEjectionTime)),
  },
]);

export const StatusProfile = Type.Union([Type.Literal('Uniform'), Type.Literal('Edgio')], {
  description:
    'Status codes for failures. Uniform: 531 for every connection failure (DNS, TCP, TLS), 536 for no response in time. Edgio: 537 for DNS, 533 for TLS, 538 for a loop, 531 and 536 otherwise.',
  default: 'Uniform',
});

export const ErrorResponse = Type.Object(
  {
    statusProfile: StatusProfile,
    retryAfter: duration(
      'Retry-After sent with 531 and 536 answers, rounded up to whole seconds; 0s sends none.',
      '5s',
    ),
    showDetails: Type.Boolean({
      description:
        'Show internal details (addresses, errno, attempts) in error bodies and Proxy-Status. Off by default so internal addresses never leak to clients.',
      default: false,
    }),
  },
  { additionalProperties: false, description: 'How failures are answered to clients.', default: {} },
);
withRules(ErrorResponse, [durationBetween('retryAfter', '0s', '24h')]);

export const OriginSpec = Type.Object(
  {
    selector: LabelSelector,
    listen: Listen,
    hosts: Type.Optional(
      Type.Array(Type.String({ pattern: DNS_NAME_PATTERN, maxLength: 253 }), {
        description:
          'Host header values this Origin serves, lower case, optionally with a leading "*." wildcard. Needed when several Origins share a listen port; a request for any other host gets 421. Empty: every host on the port.',
        maxItems: 64,
      }),
    ),
    upstream: Upstream,
    timeouts: Timeouts,
    upgrade: Upgrade,
    outlierDetection: OutlierDetection,
    healthCheck: Type.Optional(HealthCheck),
    errorResponse: ErrorResponse,
    request: RequestPolicy,
    forwardedHeaders: ForwardedHeaders,
  },
  {
    additionalProperties: false,
    description: 'What the Origin declares: the upstream origin and the pods that serve edge traffic for it.',
  },
);
withRules(OriginSpec, [
  {
    rule: '!has(self.hosts) || self.hosts.all(h, self.hosts.exists_one(x, x == h))',
    message: 'hosts must be unique: remove the repeated host',
    fieldPath: '.hosts',
    check: (s: { hosts?: string[] }) => new Set(s.hosts ?? []).size === (s.hosts ?? []).length,
  },
]);

export const ObjectMeta = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' }),
    namespace: Type.Optional(
      Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }),
    ),
    generation: Type.Optional(Type.Integer()),
    uid: Type.Optional(Type.String()),
    resourceVersion: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);

export const OriginManifest = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('Origin'),
    metadata: ObjectMeta,
    spec: OriginSpec,
  },
  { additionalProperties: true },
);

export type LabelSelector = Static<typeof LabelSelector>;
export type UpstreamTLS = Static<typeof UpstreamTLS>;
export type Backup = Static<typeof Backup>;
export type Upstream = Static<typeof Upstream>;
export type Timeouts = Static<typeof Timeouts>;
export type Upgrade = Static<typeof Upgrade>;
export type OutlierDetection = Static<typeof OutlierDetection>;
export type ErrorResponse = Static<typeof ErrorResponse>;
export type StatusProfile = Static<typeof StatusProfile>;
export type OriginSpec = Static<typeof OriginSpec>;
export type OriginManifest = Static<typeof OriginManifest>;
