// Helpers of the scale benchmark: the API server's own request and watch-event counters (its /metrics), so writes and
// fan-out are counted where they land, not where we think we sent them.
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

function labelsOf(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

export async function apiCounters(admin: KubeClient): Promise<Counters> {
  const res = await admin.send('GET', '/metrics', { timeoutMs: 30_000 });
  const text = await res.text();
  const c: Counters = { reportWrites: 0, statusWrites: 0, originWatchEvents: 0 };
  for (const line of text.split('\n')) {
    const m = /^(apiserver_request_total|apiserver_watch_events_total)\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
    if (m === null) continue;
    const l = labelsOf(m[2] as string);
    const v = Number(m[3]);
    if (m[1] === 'apiserver_watch_events_total') {
      if (l.resource === 'origins' || l.kind === 'Origin') c.originWatchEvents += v;
      continue;
    }
    if (!WRITE_VERBS.has(l.verb ?? '')) continue;
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
