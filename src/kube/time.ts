// Timestamps as the Kubernetes API writes them (metav1.Time and metav1.MicroTime).

/** RFC 3339, as metav1.Time and MicroTime serialize (fraction and offset optional). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** metav1.Time: RFC 3339 in whole seconds. */
export const metaTime = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** metav1.MicroTime: six fractional digits (Leases, events.k8s.io Events). */
export const microTime = (d: Date): string => d.toISOString().replace('Z', '000Z');
