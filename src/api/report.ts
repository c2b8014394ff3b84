// OriginReport: what one pod's sidecar observes about one Origin. One object per
// (Origin, pod), written only by that pod's sidecar (server-side apply, its own
// field manager, ownerReference to the Pod so it is garbage-collected with it) and
// read by the operator, which aggregates the reports into Origin.status. Learned
// from Gatekeeper's *PodStatus kinds: one small object per writer instead of
// every pod patching one shared status.
//
// Where the data lives: everything is under `status`, and the CRD has no status
// subresource. A report has no desired state, so a `spec` would be a fiction, and
// without the subresource one server-side apply carries labels, ownerReference,
// identity and state: one request, one RBAC verb and one admission-policy match
// per write. The identity fields (origin, pod, pod UID) sit in `status` too, as
// Gatekeeper's `id` and `constraintUID` do.
import { createHash } from 'node:crypto';
import { FormatRegistry, type Static, Type } from '@sinclair/typebox';
import { RFC3339 } from '../kube/time.ts';
import { type Cause, PHASES, type Phase } from './causes.ts';
import { GROUP } from './origin.ts';

export const REPORT_KIND = 'OriginReport';
/** Label on every report: the Origin it is about (a label value, see labelValue()). */
export const ORIGIN_LABEL = `${GROUP}/origin`;
/** Label on every report: the pod that wrote it (a label value, see labelValue()). */
export const POD_LABEL = `${GROUP}/pod`;

// TypeBox checks `format` only for registered formats; RFC 3339 as Kubernetes writes it.
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => RFC3339.test(v));
}

/** An RFC 3339 timestamp, as metav1.Time serializes. */
export const Timestamp = (description: string) =>
  Type.String({ description, format: 'date-time', maxLength: 64 });

const NAME_PATTERN = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';
/** A Kubernetes object name (DNS subdomain). */
export const ObjectName = (description: string) =>
  Type.String({ description, minLength: 1, maxLength: 253, pattern: NAME_PATTERN });

/**
 * A failure cause: an RFC 9209 Proxy-Status error type (see causes.ts). A string
 * in the CRD rather than an enum, so a newer sidecar's report with a cause this
 * CRD does not know yet is still accepted during an upgrade.
 */
export const CauseName = Type.Unsafe<Cause>(
  Type.String({
    description:
      'An RFC 9209 Proxy-Status error type, e.g. connection_refused, connection_timeout, destination_ip_unroutable, dns_error, dns_timeout, tls_certificate_error, http_response_timeout.',
    pattern: '^[a-z][a-z0-9_]*$',
    maxLength: 64,
  }),
);

export const PhaseName = Type.Unsafe<Phase>(
  Type.Union(
    PHASES.map((p) => Type.Literal(p)),
    {
      description:
        'Phase of the upstream attempt that failed: dns, connect or tls (no connection: 531), request or response (connection made, no answer: 536).',
    },
  ),
);

/** Where a piece of evidence about an origin comes from. */
export const EvidenceSource = Type.Union([Type.Literal('Traffic'), Type.Literal('Probe')], {
  description: 'What the evidence comes from: Traffic (a proxied request) or Probe (an active health check).',
});

const failureProperties = {
  cause: CauseName,
  phase: PhaseName,
  statusCode: Type.Integer({
    description: 'Status code the sidecar answered the client with, e.g. 531 or 536.',
    minimum: 100,
    maximum: 599,
  }),
  errno: Type.Optional(
    Type.String({
      description: 'Raw error code seen, e.g. ECONNREFUSED, ETIMEOUT, ENOTFOUND.',
      maxLength: 64,
    }),
  ),
  rcode: Type.Optional(
    Type.String({
      description: 'DNS response code for DNS causes (RFC 9209 rcode), e.g. NXDOMAIN, SERVFAIL.',
      maxLength: 32,
    }),
  ),
  alertId: Type.Optional(
    Type.Integer({
      description: 'TLS alert number for tls_alert_received (RFC 9209 alert-id).',
      minimum: 0,
      maximum: 255,
    }),
  ),
  address: Type.Optional(
    Type.String({ description: 'Origin address tried, host:port (IPv6 in brackets).', maxLength: 300 }),
  ),
  attempts: Type.Integer({
    description: 'Connection attempts made before giving up, over all addresses.',
    minimum: 0,
  }),
  elapsedMs: Type.Integer({
    description: 'Milliseconds from the start of the request to the failure.',
    minimum: 0,
  }),
  hint: Type.String({
    description: 'What to check, in one line, for whoever runs the origin.',
    maxLength: 1024,
  }),
  time: Timestamp('When the failure happened.'),
  source: Type.Optional(EvidenceSource),
};

/** One classified upstream failure, as the sidecar saw it. */
export const FailureDetail = Type.Object(failureProperties, {
  additionalProperties: false,
  description: 'The most recent classified upstream failure.',
});

/** FailureDetail plus the pod that saw it; used in Origin.status, where failures come from many pods. */
export const PodFailureDetail = Type.Object(
  { ...failureProperties, pod: ObjectName('Pod whose sidecar saw the failure.') },
  {
    additionalProperties: false,
    description: 'The most recent classified upstream failure seen by any selected pod.',
  },
);

export const Health = Type.Union(
  [Type.Literal('Reachable'), Type.Literal('Unreachable'), Type.Literal('Unknown')],
  {
    description:
      'Reachable: the last attempts to the origin (requests or checks) succeeded. Unreachable: they fail (see cause). Unknown: neither a request nor a check reached a verdict yet.',
  },
);

/** The sidecar's active checks of one origin, as counters and the last result. */
export const CheckState = Type.Object(
  {
    checks: Type.Integer({
      description: 'Checks run since the sidecar started.',
      minimum: 0,
      format: 'int64',
    }),
    failures: Type.Integer({
      description: 'Checks that failed since the sidecar started.',
      minimum: 0,
      format: 'int64',
    }),
    lastTime: Timestamp('When the last check ended.'),
    lastResult: Type.Union([Type.Literal('Success'), Type.Literal('Failure')], {
      description: 'Outcome of the last check.',
    }),
    consecutive: Type.Integer({
      description: 'Checks in a row with that outcome (compared with the thresholds).',
      minimum: 0,
    }),
    cause: Type.Optional(CauseName),
    summary: Type.String({
      description: 'What the last check saw, in one line (steps and timings).',
      maxLength: 512,
    }),
  },
  { additionalProperties: false, description: "The sidecar's active health checks (spec.healthCheck)." },
);

export const OriginReportStatus = Type.Object(
  {
    originName: ObjectName('Name of the Origin this report is about, in the same namespace.'),
    originUID: Type.Optional(
      Type.String({
        description: 'UID of that Origin, to tell a recreated Origin of the same name apart.',
        maxLength: 64,
      }),
    ),
    podName: ObjectName('Name of the pod whose sidecar writes this report.'),
    podUID: Type.String({
      description: 'UID of that pod; the report is owned by it and deleted with it.',
      maxLength: 64,
    }),
    nodeName: Type.Optional(
      Type.String({
        description: 'Node the pod runs on (downward API spec.nodeName), to group failures by node and zone.',
        maxLength: 253,
      }),
    ),
    originGeneration: Type.Integer({
      description:
        "metadata.generation of the Origin spec the sidecar runs; older than the Origin's means not yet updated.",
      minimum: 0,
    }),
    health: Health,
    source: Type.Optional(
      Type.Union([Type.Literal('Traffic'), Type.Literal('Probe')], {
        description: 'What last set health: Traffic (a proxied request) or Probe (an active health check).',
      }),
    ),
    cause: Type.Optional(CauseName),
    phase: Type.Optional(PhaseName),
    hint: Type.Optional(
      Type.String({
        description: 'What to check while the origin is unreachable, in one line.',
        maxLength: 1024,
      }),
    ),
    requests: Type.Integer({
      description: 'Requests forwarded to the origin since the sidecar started.',
      minimum: 0,
      format: 'int64',
    }),
    failures: Type.Integer({
      description: 'Requests answered with an upstream failure (531, 536, ...) since the sidecar started.',
      minimum: 0,
      format: 'int64',
    }),
    failuresByCause: Type.Optional(
      Type.Record(Type.String(), Type.Integer({ minimum: 0, format: 'int64' }), {
        description: 'Failures since the sidecar started, by cause (RFC 9209 error type).',
        maxProperties: 32,
      }),
    ),
    lastFailure: Type.Optional(FailureDetail),
    healthCheck: Type.Optional(CheckState),
    lastTransitionTime: Timestamp('When health or cause last changed.'),
    heartbeatTime: Timestamp('When the sidecar last wrote this report; it rewrites it slowly while failing.'),
    sidecarVersion: Type.String({
      description: 'Version of the sidecar that writes this report.',
      maxLength: 64,
    }),
  },
  {
    additionalProperties: false,
    description: "What the sidecar observes. Written only by the pod's sidecar.",
  },
);

export type FailureDetail = Static<typeof FailureDetail>;
export type PodFailureDetail = Static<typeof PodFailureDetail>;
export type Health = Static<typeof Health>;
export type OriginReportStatus = Static<typeof OriginReportStatus>;
export type EvidenceSource = Static<typeof EvidenceSource>;
export type CheckState = Static<typeof CheckState>;

export interface OriginReport {
  apiVersion: 'edge.originguard.dev/v1alpha1';
  kind: 'OriginReport';
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    ownerReferences?: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
      blockOwnerDeletion?: boolean;
    }[];
    [key: string]: unknown;
  };
  status: OriginReportStatus;
}

const MAX_NAME = 253;
const MAX_LABEL_VALUE = 63;
const HASH_LENGTH = 10;
const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);

/** Shortens `text` to `max` characters keeping it unique: a prefix, then a hash of the whole. */
function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  // The prefix must end in an alphanumeric: names and label values may not end in '-', '.' or '_'.
  const prefix = text.slice(0, max - HASH_LENGTH - 1).replace(/[^a-z0-9]+$/i, '');
  return `${prefix}-${hash(text)}`;
}

/**
 * Name of the report of `pod` about `origin`: deterministic, at most 253
 * characters, and never the same for two different pairs. Like Gatekeeper's
 * dashPacker, the parts are joined with '-' and a '-' inside a part is written
 * '--'; names cannot start or end with '-', so the result reads back one way.
 * Too long a result keeps a prefix and ends in a hash of the whole.
 */
export function reportName(origin: string, pod: string): string {
  const packed = [origin, pod].map((part) => part.replaceAll('-', '--')).join('-');
  return shorten(packed, MAX_NAME);
}

/** A name as a label value (at most 63 characters); longer names keep a prefix and end in a hash. */
export function labelValue(name: string): string {
  return shorten(name, MAX_LABEL_VALUE);
}

/** Labels every report carries, so the operator lists an Origin's reports with one selector. */
export function reportLabels(origin: string, pod: string): Record<string, string> {
  return { [ORIGIN_LABEL]: labelValue(origin), [POD_LABEL]: labelValue(pod) };
}
