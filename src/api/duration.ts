// Go-style durations as Kubernetes and its tools write them ("500ms", "5s",
// "1m30s"): the Origin schema's duration fields and every command's duration
// flags take this one syntax.

/** A duration: one or more number-unit pairs, units ms, s, m, h. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

const DURATION = new RegExp(DURATION_PATTERN);
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration ("1m30s", "250ms") into milliseconds; NaN if malformed. */
export function parseDuration(text: string): number {
  if (!DURATION.test(text)) return Number.NaN;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  return total;
}
