// Pods, reports and an Origin for the status aggregation's unit tests.
import type { Cause } from '../../src/api/causes.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import type { Health, OriginReport, OriginReportStatus } from '../../src/api/report.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { aggregateStatus, type OriginLike } from '../../src/operator/aggregate.ts';

export const NOW = new Date('2026-11-23T19:00:00Z');
export const ORIGIN: OriginLike = {
  metadata: { name: 'shop', namespace: 'web', generation: 2, uid: 'origin-uid' },
  spec: { selector: { matchLabels: { app: 'shop-edge' } } },
};

export interface PodOptions {
  injected?: boolean;
  native?: boolean;
  labels?: Record<string, string>;
  phase?: string;
  deleting?: boolean;
  owner?: { kind: string; name: string };
  annotations?: Record<string, string>;
}

export function pod(name: string, o: PodOptions = {}): Pod {
  const sidecar = { name: SIDECAR_CONTAINER };
  const injected = o.injected ?? true;
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      labels: o.labels ?? { app: 'shop-edge' },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.deleting ? { deletionTimestamp: '2026-11-23T18:59:00Z' } : {}),
      ...(o.owner ? { ownerReferences: [{ ...o.owner, controller: true }] } : {}),
    },
    spec: {
      ...(injected && o.native !== false ? { initContainers: [sidecar] } : {}),
      containers: [{ name: 'app' }, ...(injected && o.native === false ? [sidecar] : [])],
    },
    status: { phase: o.phase ?? 'Running' },
  };
}

export function report(
  podName: string,
  health: Health,
  cause?: string,
  { failedAt = '2026-11-23T18:58:00Z', ...extra }: Partial<OriginReportStatus> & { failedAt?: string } = {},
): OriginReport {
  const c = cause as Cause | undefined;
  const lastFailure = {
    cause: c,
    phase: 'connect',
    statusCode: 531,
    attempts: 1,
    elapsedMs: 2,
    hint: 'h',
    time: failedAt,
  };
  const status = {
    originName: 'shop',
    originUID: 'origin-uid',
    podName,
    podUID: `uid-${podName}`,
    originGeneration: 2,
    health,
    ...(c === undefined ? {} : { cause: c, lastFailure }),
    requests: 1,
    failures: c === undefined ? 0 : 1,
    lastTransitionTime: '2026-11-23T18:50:00Z',
    heartbeatTime: '2026-11-23T18:59:00Z',
    sidecarVersion: '0.1.0',
  } as OriginReportStatus;
  const metadata = { name: `shop-${podName}`, namespace: 'web' };
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'OriginReport',
    metadata,
    status: { ...status, ...extra },
  };
}

export const aggregate = (pods: Pod[], reports: OriginReport[], previous?: OriginStatus, now = NOW) =>
  aggregateStatus({ origin: ORIGIN, pods, reports, previous, now });
export const conditionOf = (s: OriginStatus, type: string) => s.conditions?.find((c) => c.type === type);
export const summary = (s: OriginStatus) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));
