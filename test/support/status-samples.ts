// Sample Origin status and OriginReport, shared by the unit tests (the TypeBox
// schemas accept them) and the cluster tests (the API server accepts them and
// kubectl shows them): the TypeScript types and the CRD must agree on both.

import type { OriginReport, OriginReportStatus } from '../../src/api/report.ts';
import { reportLabels, reportName } from '../../src/api/report.ts';
import type { OriginStatus } from '../../src/api/status.ts';

/** An Origin status the operator would write while 2 of 3 selected pods fail with connection_refused. */
export function failingOriginStatus(): OriginStatus {
  return {
    observedGeneration: 1,
    reachable: 'False',
    cause: 'connection_refused',
    hint: 'Nothing accepts connections on the origin port: check that the origin process is running.',
    podsSummary: '0/3',
    pods: { selected: 3, injected: 2, current: 2, reachable: 0, failing: 2 },
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: 'OriginUnreachable',
        message: 'No selected pod reaches the origin.',
        lastTransitionTime: '2026-11-23T19:00:00Z',
        observedGeneration: 1,
      },
    ],
    causes: [
      {
        cause: 'connection_refused',
        pods: 2,
        samplePods: ['shop-edge-0', 'shop-edge-1'],
        lastSeen: '2026-11-23T19:00:00Z',
      },
    ],
    lastFailure: {
      cause: 'connection_refused',
      phase: 'connect',
      statusCode: 531,
      errno: 'ECONNREFUSED',
      address: '127.0.0.7:80',
      attempts: 1,
      elapsedMs: 2,
      hint: 'Nothing accepts connections on the origin port.',
      pod: 'shop-edge-0',
      time: '2026-11-23T19:00:00Z',
      source: 'Probe',
    },
    triangulation: {
      scope: 'Origin',
      summary:
        'All 2 pods fail (connection_refused) and so does the operator from its own pod: the origin itself or the network in front of it.',
      reasoning: ['2 pods report: 2 fail, 0 reach the origin', 'node-a 2/2 failing'],
      nodes: [{ name: 'node-a', pods: 2, failing: 2 }],
    },
    operatorProbe: {
      from: 'originguard-operator-0',
      time: '2026-11-23T19:00:01Z',
      reason: 'PodsFailing',
      result: 'Unreachable',
      cause: 'connection_refused',
      statusCode: 531,
      summary: '127.0.0.7:80 refuses connections: nothing listens on port 80',
      steps: ['tcp 127.0.0.7:80: refused (ECONNREFUSED) (0 ms)'],
    },
    notInjected: {
      count: 1,
      samplePods: ['shop-edge-2'],
      hint: 'Restart the workload: kubectl rollout restart deployment/shop-edge',
    },
  };
}

/** What the sidecar of `pod` reports about Origin shop while the origin refuses connections. */
export function unreachableReportStatus(pod: string, podUID: string): OriginReportStatus {
  return {
    originName: 'shop',
    podName: pod,
    podUID,
    originGeneration: 1,
    health: 'Unreachable',
    cause: 'connection_refused',
    phase: 'connect',
    hint: 'Nothing accepts connections on the origin port.',
    requests: 10,
    failures: 4,
    failuresByCause: { connection_refused: 4 },
    lastFailure: {
      cause: 'connection_refused',
      phase: 'connect',
      statusCode: 531,
      errno: 'ECONNREFUSED',
      address: '127.0.0.7:80',
      attempts: 1,
      elapsedMs: 2,
      hint: 'Nothing accepts connections on the origin port.',
      time: '2026-11-23T19:00:00Z',
    },
    lastTransitionTime: '2026-11-23T19:00:00Z',
    heartbeatTime: '2026-11-23T19:00:05Z',
    sidecarVersion: '0.1.0',
  };
}

/** The whole OriginReport object the sidecar of `pod` applies, owned by its Pod. */
export function unreachableReport(namespace: string, pod: string, podUID: string): OriginReport {
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'OriginReport',
    metadata: {
      name: reportName('shop', pod),
      namespace,
      labels: reportLabels('shop', pod),
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod, uid: podUID }],
    },
    status: unreachableReportStatus(pod, podUID),
  };
}
