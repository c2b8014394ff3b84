// Origin.status: written only by the operator, which aggregates the pods'
// OriginReports into it (see report.ts). Bounded by construction: counts, a
// per-cause summary with at most a few sample pods, never one entry per pod.
// Conditions follow the Kubernetes API conventions (metav1.Condition, KEP-1623);
// the flat fields (reachable, cause, hint, podsSummary) exist for printer columns,
// which cannot filter lists by more than one key.
import { type Static, Type } from '@sinclair/typebox';
import { CauseName, ObjectName, PodFailureDetail, Timestamp } from './report.ts';
import { OperatorProbe, Triangulation } from './triangulation.ts';

/** The condition types the operator writes; `Ready` is the summary. */
export const CONDITION_TYPES = ['Ready', 'Reachable', 'Degraded'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const MAX_SAMPLE_PODS = 5;
export const MAX_CAUSES = 16;

/** Shortens text to at most `max` characters, marking the cut. */
export const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 3)}...`;

export const ConditionStatus = Type.Union(
  [Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')],
  {
    description: 'True, False or Unknown.',
  },
);

/** metav1.Condition, with the same validation as Kubernetes' own. */
export const Condition = Type.Object(
  {
    type: Type.String({
      description:
        "Condition type. Ready: the Origin is in effect and its pods reach the origin. Reachable: the selected pods' sidecars reach the origin. Degraded: some but not all of them do, or some selected pods run without the sidecar.",
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: ConditionStatus,
    observedGeneration: Type.Optional(
      Type.Integer({
        description: 'metadata.generation the condition was computed from.',
        minimum: 0,
        format: 'int64',
      }),
    ),
    lastTransitionTime: Timestamp('When status last changed.'),
    reason: Type.String({
      description:
        'Why the condition has its status, one CamelCase word, e.g. OriginReachable, ConnectionRefused.',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: Type.String({ description: 'Details for people, e.g. the hint.', maxLength: 32768 }),
  },
  { additionalProperties: false },
);

const samplePods = Type.Array(ObjectName('Pod name.'), {
  description: `Up to ${MAX_SAMPLE_PODS} of those pods, as a sample.`,
  maxItems: MAX_SAMPLE_PODS,
});

export const PodCounts = Type.Object(
  {
    selected: Type.Integer({ description: 'Pods the selector selects (not finished).', minimum: 0 }),
    injected: Type.Integer({ description: 'Selected pods that run the sidecar.', minimum: 0 }),
    current: Type.Integer({
      description: 'Injected pods whose sidecar runs the current spec (metadata.generation).',
      minimum: 0,
    }),
    reachable: Type.Integer({
      description: 'Injected pods whose sidecar last reached the origin.',
      minimum: 0,
    }),
    failing: Type.Integer({
      description: 'Injected pods whose sidecar fails to reach the origin.',
      minimum: 0,
    }),
  },
  { additionalProperties: false, description: 'Pod counts.' },
);

export const CauseSummary = Type.Object(
  {
    cause: CauseName,
    pods: Type.Integer({ description: 'Pods whose sidecar currently reports this cause.', minimum: 0 }),
    samplePods,
    lastSeen: Timestamp('When a pod last reported this cause.'),
  },
  { additionalProperties: false },
);

export const NotInjected = Type.Object(
  {
    count: Type.Integer({ description: 'Selected pods that run without the sidecar.', minimum: 0 }),
    samplePods,
    hint: Type.String({
      description: 'How to fix it, e.g. restart the workload so its pods are created again with the sidecar.',
      maxLength: 1024,
    }),
  },
  {
    additionalProperties: false,
    description:
      'Selected pods created without the sidecar: created before the Origin, opted out, or while the injection webhook was unavailable (it fails open).',
  },
);

const Tristate = Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')], {
  description: "Same as the Reachable condition's status: True, False or Unknown.",
});

export const OriginStatus = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({
        description: 'metadata.generation the status was computed from.',
        minimum: 0,
        format: 'int64',
      }),
    ),
    conditions: Type.Optional(
      Type.Array(Condition, {
        description: 'Ready, Reachable and Degraded, following the Kubernetes API conventions.',
        maxItems: 8,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    reachable: Type.Optional(Tristate),
    cause: Type.Optional(
      Type.String({
        description: 'Cause most pods report while unreachable (RFC 9209 error type); empty when reachable.',
        maxLength: 64,
      }),
    ),
    hint: Type.Optional(
      Type.String({ description: 'What to check about that cause, in one line.', maxLength: 1024 }),
    ),
    podsSummary: Type.Optional(
      Type.String({
        description: 'Reachable/selected pods, e.g. 3/4, as kubectl get shows it.',
        maxLength: 32,
      }),
    ),
    pods: Type.Optional(PodCounts),
    causes: Type.Optional(
      Type.Array(CauseSummary, {
        description: `Failing pods by cause, most pods first; at most ${MAX_CAUSES} causes.`,
        maxItems: MAX_CAUSES,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['cause'],
      }),
    ),
    lastFailure: Type.Optional(PodFailureDetail),
    notInjected: Type.Optional(NotInjected),
    triangulation: Type.Optional(Triangulation),
    operatorProbe: Type.Optional(OperatorProbe),
  },
  {
    additionalProperties: false,
    description:
      "What the operator observes, aggregated from the pods' OriginReports. Written only by the operator.",
  },
);

export type ConditionStatus = Static<typeof ConditionStatus>;
export type Condition = Static<typeof Condition>;
export type PodCounts = Static<typeof PodCounts>;
export type CauseSummary = Static<typeof CauseSummary>;
export type NotInjected = Static<typeof NotInjected>;
export type OriginStatus = Static<typeof OriginStatus>;
