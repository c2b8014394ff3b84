// Helpers of the scale benchmark: the API server's own request and watch-event counters (its /metrics), so writes and
// fan-out are counted where they land, not where we think we sent them.

import { parseMetrics } from '../../hack/prom-text.ts';
import type { KubeClient } from '../../src/kube/client.ts';

export interface Counters {
  /** Writes to OriginReports (apply, patch, create, update, delete). */
  reportWrites: number;
  /** Writes to origins/status. */
  statusWrites: number;
  /** Watch events the API server sent for Origins, over all watchers. */
  originWatchEvents: number;
}

const WRITE_VERBS = new Set(['APPLY', 'PATCH', 'CREATE', 'UPDATE', 'DELETE', 'POST', 'PUT']);

export async function apiCounters(admin: KubeClient): Promise<Counters> {
  const res = await admin.send('GET', '/metrics', { timeoutMs: 30_000 });
  const c: Counters = { reportWrites: 0, statusWrites: 0, originWatchEvents: 0 };
  for (const { name, labels: l, value: v } of parseMetrics(await res.text())) {
    if (name === 'apiserver_watch_events_total') {
      if (l.resource === 'origins' || l.kind === 'Origin') c.originWatchEvents += v;
      continue;
    }
    if (name !== 'apiserver_request_total' || !WRITE_VERBS.has(l.verb ?? '')) continue;
    if (l.resource === 'originreports') c.reportWrites += v;
    if (l.resource === 'origins' && l.subresource === 'status') c.statusWrites += v;
  }
  return c;
}

export function delta(a: Counters, b: Counters): Counters {
  return {
    reportWrites: b.reportWrites - a.reportWrites,
    statusWrites: b.statusWrites - a.statusWrites,
    originWatchEvents: b.originWatchEvents - a.originWatchEvents,
  };
}
