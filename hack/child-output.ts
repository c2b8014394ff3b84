// The output and readiness of a child process the tests, the playground and the
// benchmark start: JSON log lines (pino's format) kept parsed for assertions and
// raw for failure messages, and a wait for its /readyz.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

export function collectJsonLines(
  stream: Readable | null | undefined,
  into: { logs: Record<string, unknown>[]; raw: string[] },
  onLog?: (line: Record<string, unknown>) => void,
): void {
  let partial = '';
  stream?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      into.raw.push(line);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        into.logs.push(parsed);
        onLog?.(parsed);
      } catch {
        // Not JSON: kept in raw only.
      }
    }
  });
}

/**
 * Polls http://127.0.0.1:<port>/readyz until it answers 200. Fails at once, with
 * the process's last output, if the process exits first; `who` names it.
 */
export async function waitForReadyz(
  who: string,
  child: ChildProcess,
  port: number,
  tail: () => string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${who}: exited with ${child.exitCode ?? child.signalCode}:\n${tail()}`);
    }
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${who}: not ready after ${timeoutMs} ms:\n${tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
