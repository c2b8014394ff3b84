// The result of a diagnosis, as `originguard diagnose -o json` prints it and as
// the sidecar's active checks and the operator's probe will keep it: one
// versioned schema (TypeBox), the source of the types below and of the schema
// documented in docs/diagnose.md. Additive changes keep `v1`; a change of a
// field's meaning or type gets a new apiVersion.
import { type Static, type TSchema, Type } from '@sinclair/typebox';

export const DIAGNOSIS_API_VERSION = 'diagnose.originguard.dev/v1';
export const DIAGNOSIS_KIND = 'Diagnosis';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Ms = (description: string) => Type.Number({ description, minimum: 0 });

/** The checklist's steps, in the order they run. */
export const STEP_PHASES = ['dns', 'tcp', 'tls', 'http'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

export const DnsQuery = Type.Object(
  {
    name: Type.String({ description: 'The name asked (after search-domain expansion).' }),
    outcome: Type.String({
      description: 'NOERROR (addresses), NODATA, NXDOMAIN, SERVFAIL, REFUSED, timeout, or the c-ares code.',
    }),
    elapsedMs: Ms('Time of the A and AAAA questions for this name.'),
  },
  { additionalProperties: false },
);

export const AddressRecord = Type.Object(
  {
    address: Type.String(),
    family: Type.Union([Type.Literal(4), Type.Literal(6)]),
    ttl: Type.Optional(Type.Integer({ description: 'TTL in seconds, as answered.', minimum: 0 })),
  },
  { additionalProperties: false },
);

export const DnsDetail = Type.Object(
  {
    host: Type.String({ description: 'The upstream host being resolved.' }),
    server: Nullable(
      Type.String({
        description:
          'The DNS server asked on its own; null for the sidecar resolver (every server, in order).',
      }),
    ),
    search: Type.Array(Type.String(), { description: 'Search domains applied (resolv.conf).' }),
    ndots: Type.Integer({ minimum: 0 }),
    queries: Type.Array(DnsQuery, { description: 'Every name tried, in order, with its outcome.' }),
    answeredName: Nullable(Type.String({ description: 'The name that answered with addresses.' })),
    cnames: Type.Array(Type.String(), {
      description: 'The CNAME chain from answeredName: each target in turn.',
    }),
    addresses: Type.Array(AddressRecord),
    rcode: Nullable(Type.String({ description: 'RFC 9209 rcode of the failure (NXDOMAIN, NOERROR...).' })),
  },
  { additionalProperties: false },
);

export const Certificate = Type.Object(
  {
    subject: Type.String(),
    issuer: Type.String(),
    subjectAltNames: Type.Array(Type.String()),
    notBefore: Type.String({ description: 'RFC 3339.' }),
    notAfter: Type.String({ description: 'RFC 3339.' }),
    daysLeft: Type.Integer({ description: 'Whole days until notAfter; negative once expired.' }),
    serialNumber: Type.String(),
    fingerprint256: Type.String(),
  },
  { additionalProperties: false },
);

export const TlsDetail = Type.Object(
  {
    serverName: Nullable(Type.String({ description: 'SNI sent; null when none is (IP upstream).' })),
    protocol: Nullable(Type.String({ description: 'e.g. TLSv1.3.' })),
    cipher: Nullable(Type.String()),
    alpn: Nullable(Type.String({ description: 'Protocol the origin selected by ALPN, if any.' })),
    chain: Type.Array(Certificate, { description: 'Certificates the origin sent, leaf first.' }),
    trust: Type.String({ description: 'What the chain is verified against: system roots, or the CA given.' }),
    chainVerified: Type.Boolean(),
    chainError: Nullable(Type.String({ description: 'OpenSSL code, e.g. CERT_HAS_EXPIRED.' })),
    nameChecked: Type.String({ description: 'The name (or IP) the certificate is checked against.' }),
    nameMatches: Type.Boolean(),
    verificationEnforced: Type.Boolean({
      description: 'false with --insecure or insecureSkipVerify: failures are reported, not enforced.',
    }),
  },
  { additionalProperties: false },
);

export const HttpDetail = Type.Object(
  {
    method: Type.String(),
    path: Type.String(),
    host: Type.String({ description: 'Host header sent.' }),
    status: Nullable(Type.Integer({ description: "The origin's status code." })),
    ttfbMs: Nullable(Ms('Time from sending the request to the first byte of the response head.')),
    bytes: Type.Integer({ minimum: 0, description: 'Body bytes read.' }),
    truncated: Type.Boolean({ description: 'The body was not read to its end (size cap).' }),
  },
  { additionalProperties: false },
);

export const Step = Type.Object(
  {
    phase: Type.Union(
      STEP_PHASES.map((p) => Type.Literal(p)),
      { description: 'dns, tcp, tls or http.' },
    ),
    target: Type.Integer({ minimum: 0, description: '0 for the upstream, 1.. for its backups in order.' }),
    address: Nullable(
      Type.String({ description: 'host:port tried (IPv6 in brackets); for dns, the server asked.' }),
    ),
    ok: Type.Boolean(),
    cause: Nullable(Type.String({ description: 'RFC 9209 cause of the failure, as the sidecar names it.' })),
    failedIn: Nullable(
      Type.String({
        description: "The classifier's phase of the failure: dns, connect, tls, request, response.",
      }),
    ),
    code: Nullable(
      Type.String({ description: 'Raw code seen: ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED...' }),
    ),
    rcode: Type.Optional(Type.String()),
    alertId: Type.Optional(Type.Integer()),
    elapsedMs: Ms('Time the step took.'),
    detail: Type.String({ description: 'One line for people.' }),
    dns: Type.Optional(DnsDetail),
    tls: Type.Optional(TlsDetail),
    http: Type.Optional(HttpDetail),
  },
  { additionalProperties: false },
);

export const Finding = Type.Object(
  {
    cause: Nullable(Type.String()),
    summary: Type.String(),
    fix: Nullable(Type.String()),
    evidence: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

export const Verdict = Type.Object(
  {
    cause: Nullable(Type.String({ description: 'RFC 9209 cause; null when reachable (or undecided).' })),
    statusCode: Nullable(
      Type.Integer({
        description: "Status the sidecar would answer: 531/536 (or the Edgio code), or the origin's own.",
      }),
    ),
    failedIn: Nullable(Type.String({ description: "Classifier's phase of the failure." })),
    rcode: Type.Optional(Type.String()),
    alertId: Type.Optional(Type.Integer()),
    summary: Type.String({ description: 'What is wrong (or that nothing is), in one sentence.' }),
    fix: Nullable(Type.String({ description: 'What to do about it, specific to the evidence.' })),
    evidence: Type.Array(Type.String(), { description: 'The step lines (or reports) that show it.' }),
    docs: Nullable(Type.String({ description: "Link to the cause's row in docs/causes.md." })),
    source: Type.Union([Type.Literal('probe'), Type.Literal('sidecars'), Type.Literal('none')], {
      description:
        "Whose view decided: this run's probe, the Origin's sidecars (their reports), or none (cannot tell from here).",
    }),
    warnings: Type.Array(Finding, { description: 'What else is wrong without stopping traffic.' }),
  },
  { additionalProperties: false },
);

export const SidecarPod = Type.Object(
  {
    pod: Type.String(),
    health: Type.String(),
    cause: Nullable(Type.String()),
    since: Nullable(Type.String({ description: 'When health or cause last changed (RFC 3339).' })),
    failures: Type.Integer({ minimum: 0 }),
    lastFailure: Nullable(Type.String({ description: 'e.g. "531 connection_refused 10.0.0.5:80".' })),
    hint: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

export const SidecarView = Type.Object(
  {
    reachable: Type.String({ description: 'Origin status: True, False or Unknown.' }),
    cause: Nullable(Type.String()),
    hint: Nullable(Type.String()),
    podsSummary: Nullable(Type.String({ description: 'Reachable/selected pods, e.g. 0/3.' })),
    statusCode: Nullable(Type.Integer({ description: 'Status of the last failure the pods answered.' })),
    pods: Type.Array(SidecarPod),
  },
  { additionalProperties: false, description: "What the Origin's sidecars report (from the cluster)." },
);

export const Upstream = Type.Object(
  {
    host: Type.String(),
    port: Type.Integer(),
    tls: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const Diagnosis = Type.Object(
  {
    apiVersion: Type.Literal(DIAGNOSIS_API_VERSION),
    kind: Type.Literal(DIAGNOSIS_KIND),
    target: Type.Object(
      {
        input: Type.String({ description: 'TARGET as given.' }),
        origin: Nullable(Type.Object({ namespace: Type.String(), name: Type.String() })),
        upstreams: Type.Array(Upstream, { description: 'The upstream, then its backups.' }),
        hostHeader: Type.String(),
        path: Type.String(),
        connectTimeoutMs: Type.Number(),
        responseTimeoutMs: Type.Number(),
        statusProfile: Type.String(),
      },
      { additionalProperties: false },
    ),
    vantage: Type.Object(
      {
        inCluster: Type.Boolean({ description: 'Run from inside a pod of the cluster.' }),
        limits: Type.Array(Type.String(), { description: 'What this vantage point cannot see or check.' }),
      },
      { additionalProperties: false },
    ),
    reachable: Type.Boolean({ description: 'The sidecar would get an HTTP response from the origin.' }),
    verdict: Verdict,
    steps: Type.Array(Step),
    sidecars: Nullable(SidecarView),
    startedAt: Type.String({ description: 'RFC 3339.' }),
    elapsedMs: Ms('Whole run.'),
  },
  { additionalProperties: false },
);

export type DnsQuery = Static<typeof DnsQuery>;
export type DnsDetail = Static<typeof DnsDetail>;
export type Certificate = Static<typeof Certificate>;
export type TlsDetail = Static<typeof TlsDetail>;
export type HttpDetail = Static<typeof HttpDetail>;
export type Step = Static<typeof Step>;
export type Finding = Static<typeof Finding>;
export type Verdict = Static<typeof Verdict>;
export type SidecarPod = Static<typeof SidecarPod>;
export type SidecarView = Static<typeof SidecarView>;
export type Diagnosis = Static<typeof Diagnosis>;

/** The schema as a JSON Schema document (docs/diagnose.schema.json, written by npm run generate:docs). */
export function diagnosisJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/originguard/originguard/blob/main/docs/diagnose.schema.json',
    title: `originguard diagnose -o json (${DIAGNOSIS_API_VERSION})`,
    ...(JSON.parse(JSON.stringify(Diagnosis)) as Record<string, unknown>),
  };
}
