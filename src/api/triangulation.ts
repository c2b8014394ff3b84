// The parts of Origin.status that answer "the origin, or the path from these
// pods?": what the operator saw when it ran the checklist from its own pod
// (operatorProbe), and the verdict that compares the vantage points: the pods
// with each other, grouped by node and zone, and with the operator
// (triangulation). Bounded like the rest of the status: a few groups, a few lines.
import { type Static, Type } from '@sinclair/typebox';
import { CauseName, Timestamp } from './report.ts';

export const MAX_NODE_GROUPS = 16;
export const MAX_ZONE_GROUPS = 8;
export const MAX_REASONS = 8;
export const MAX_PROBE_STEPS = 16;

/** How far a failure reaches, from the narrowest view that explains it. */
export const SCOPES = ['None', 'Origin', 'PodPath', 'Nodes', 'Zones', 'SomePods', 'AllPods'] as const;
export type Scope = (typeof SCOPES)[number];

export const ScopeName = Type.Union(
  SCOPES.map((s) => Type.Literal(s)),
  {
    description:
      "None: no pod fails. Origin: every pod fails and so does the operator's probe: the origin itself or the network in front of it. PodPath: the pods fail while the operator reaches the origin: the path from those pods (NetworkPolicy, node egress rules, the pods' DNS). Nodes: only the pods of some nodes fail, every pod on them. Zones: only the pods of some zones fail. SomePods: some pods fail, neither a whole node nor a whole zone. AllPods: every pod fails and the operator's view is not known (probe off, not allowed here, or not run yet).",
  },
);

const count = (description: string) => Type.Integer({ description, minimum: 0 });

export const NodeGroup = Type.Object(
  {
    name: Type.String({ description: 'Node name.', maxLength: 253 }),
    zone: Type.Optional(
      Type.String({ description: "The node's topology.kubernetes.io/zone label.", maxLength: 253 }),
    ),
    pods: count('Selected pods with a report on this node.'),
    failing: count('Of those, pods whose sidecar fails to reach the origin.'),
  },
  { additionalProperties: false },
);

export const ZoneGroup = Type.Object(
  {
    name: Type.String({ description: 'Zone (topology.kubernetes.io/zone).', maxLength: 253 }),
    pods: count('Selected pods with a report in this zone.'),
    failing: count('Of those, pods whose sidecar fails to reach the origin.'),
  },
  { additionalProperties: false },
);

export const Triangulation = Type.Object(
  {
    scope: ScopeName,
    summary: Type.String({
      description: 'The verdict in one sentence, e.g. "3/10 pods fail, all on node node-a".',
      maxLength: 1024,
    }),
    reasoning: Type.Array(Type.String({ maxLength: 512 }), {
      description: 'How the verdict follows from what each vantage point saw, one line each.',
      maxItems: MAX_REASONS,
    }),
    nodes: Type.Optional(
      Type.Array(NodeGroup, {
        description: `Pods by node, nodes with failing pods first; at most ${MAX_NODE_GROUPS}.`,
        maxItems: MAX_NODE_GROUPS,
      }),
    ),
    zones: Type.Optional(
      Type.Array(ZoneGroup, {
        description: `Pods by zone, where nodes carry the label; zones with failing pods first; at most ${MAX_ZONE_GROUPS}.`,
        maxItems: MAX_ZONE_GROUPS,
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "Where the failure is, from comparing the vantage points: the pods' sidecars, grouped by node and zone, and the operator's own probe.",
  },
);

export const ProbeResult = Type.Union(
  [Type.Literal('Reachable'), Type.Literal('Unreachable'), Type.Literal('NotProbed')],
  {
    description:
      'Reachable or Unreachable from the operator; NotProbed when the operator may not or cannot probe this origin (see summary).',
  },
);

export const OperatorProbe = Type.Object(
  {
    from: Type.String({
      description: 'Where the probe ran: the operator replica (pod) that ran it.',
      maxLength: 253,
    }),
    time: Timestamp('When the probe ended.'),
    reason: Type.Union([Type.Literal('PodsFailing'), Type.Literal('Requested')], {
      description:
        'Why it ran: PodsFailing (sidecars report failures) or Requested (an annotation, e.g. set by kubectl originguard diagnose --from-operator).',
    }),
    requestId: Type.Optional(
      Type.String({ description: 'The request answered, for Requested.', maxLength: 64 }),
    ),
    result: ProbeResult,
    cause: Type.Optional(CauseName),
    statusCode: Type.Optional(
      Type.Integer({
        description: "Status a sidecar in the operator's place would answer (531, 536...).",
        minimum: 100,
        maximum: 599,
      }),
    ),
    summary: Type.String({ description: 'The verdict from the operator, in one line.', maxLength: 1024 }),
    steps: Type.Array(Type.String({ maxLength: 256 }), {
      description: 'The checklist as it ran: each DNS, TCP, TLS and HTTP step in one line.',
      maxItems: MAX_PROBE_STEPS,
    }),
  },
  {
    additionalProperties: false,
    description:
      "The checklist run by the operator from its own pod, against the Origin's declared upstream and backups only.",
  },
);

export type NodeGroup = Static<typeof NodeGroup>;
export type ZoneGroup = Static<typeof ZoneGroup>;
export type Triangulation = Static<typeof Triangulation>;
export type ProbeResult = Static<typeof ProbeResult>;
export type OperatorProbe = Static<typeof OperatorProbe>;
