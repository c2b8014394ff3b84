// The Events an Origin's status change deserves: transitions only, never a
// steady state (events.ts records them).
import { clip, type OriginStatus } from '../api/status.ts';

/** An events.k8s.io Event to record: reason is one CamelCase word, note at most 1 kB. */
export interface EventSpec {
  type: 'Normal' | 'Warning';
  /** CamelCase, e.g. OriginUnreachable. */
  reason: string;
  /** For people: what happened and what to check. */
  note: string;
}

/** Kubernetes caps an Event's note at 1 kB. */
export const MAX_NOTE = 1000;

/** The Events a status change deserves: transitions only, never a steady state. */
export function transitionEvents(
  previous: OriginStatus | undefined,
  next: OriginStatus,
  originName: string,
): EventSpec[] {
  const events: EventSpec[] = [];
  const add = (type: EventSpec['type'], reason: string, note: string) =>
    events.push({ type, reason, note: clip(note.trim(), MAX_NOTE) });
  const was = previous?.reachable ?? 'Unknown';
  const origin = `Origin ${originName}`;
  const from = `from ${next.pods?.failing ?? 0}/${next.pods?.selected ?? 0} pods`;
  const cause = next.cause ?? 'cause unknown';
  const hint = next.hint ?? '';
  if (next.reachable === 'False' && was !== 'False') {
    add('Warning', 'OriginUnreachable', `${origin} is unreachable ${from}: ${cause}. ${hint}`);
  } else if (next.reachable === 'False' && next.cause !== previous?.cause) {
    const now = `now ${cause} (was ${previous?.cause ?? 'unknown'})`;
    add('Warning', 'CauseChanged', `${origin} is still unreachable ${from}, ${now}. ${hint}`);
  }
  if (next.reachable === 'True' && was === 'False') {
    add('Normal', 'OriginReachable', `${origin} is reachable again: ${next.podsSummary} pods reach it.`);
  }
  if ((previous?.notInjected?.count ?? 0) === 0 && (next.notInjected?.count ?? 0) > 0) {
    add('Warning', 'PodsNotInjected', `${origin}: ${next.notInjected?.hint}`);
  }
  return events;
}
