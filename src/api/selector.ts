// Label selectors as Kubernetes evaluates them (metav1.LabelSelector): every
// matchLabels pair and every matchExpressions requirement must hold. Pure; used
// by the injection webhook, the status aggregation and the sidecar in the cluster.
import type { LabelSelector } from './origin.ts';

type Requirement = NonNullable<LabelSelector['matchExpressions']>[number];

function meets(req: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, req.key);
  switch (req.operator) {
    case 'In':
      return has && (req.values ?? []).includes(labels[req.key] as string);
    case 'NotIn':
      return !has || !(req.values ?? []).includes(labels[req.key] as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/**
 * Whether `selector` selects an object with `labels`. An empty selector selects
 * nothing here: the Origin schema refuses it, and selecting every pod of a
 * namespace by accident is the worse failure.
 */
export function selects(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = labels ?? {};
  const pairs = Object.entries(selector.matchLabels ?? {});
  const exprs = selector.matchExpressions ?? [];
  if (pairs.length === 0 && exprs.length === 0) return false;
  return pairs.every(([k, v]) => l[k] === v) && exprs.every((r) => meets(r, l));
}
