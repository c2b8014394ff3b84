// `npm run playground`, as the README tells a user to run it: the script comes
// up on its own control plane, says it is ready, proxies through the injected
// sidecar, shows the cause when the demo origin stops, and Ctrl-C (SIGINT)
// stops everything and removes its files.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { get, proxyStatus } from '../support/run-sidecar.ts';
import { kubectlOk, waitFor } from './fixtures.ts';

const repo = new URL('../../', import.meta.url).pathname;
let child: ChildProcess | undefined;

afterAll(() => {
  // Only if the test failed before its own SIGINT: the script's exit handlers clean up.
  if (child?.exitCode === null) child.kill('SIGKILL');
});

/** Resolves with all stdout once `pattern` appears; rejects with the output if the script exits first. */
function waitForOutput(proc: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  let out = '';
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} after ${timeoutMs} ms:\n${out}\n${err}`)),
      timeoutMs,
    );
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      // The instructions follow the ready line in the same write; wait for their last line.
      if (pattern.test(out) && out.includes('Ctrl-C')) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the playground exited with ${code} before it was ready:\n${out}\n${err}`));
    });
  });
}

describe('npm run playground', () => {
  it('comes up, proxies through the injected sidecar, shows the cause of a stopped origin, and stops on Ctrl-C', async () => {
    const pkg = JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.playground).toBe('node hack/playground.ts');
    const t0 = Date.now();
    child = spawn(process.execPath, ['hack/playground.ts'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = await waitForOutput(child, /^originguard playground ready in [\d.]+ s$/m, 100_000);
    const readyMs = Date.now() - t0;

    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1] ?? '';
    const proxy = /curl -i (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1] ?? '';
    const control = /curl -X POST (http:\/\/127\.0\.0\.1:\d+\/origin)\/stop/.exec(out)?.[1] ?? '';
    expect(existsSync(kubeconfig)).toBe(true);

    const up = await get(proxy);
    expect(up.status).toBe(200);
    expect(up.body).toContain('hello from the demo origin');

    expect((await fetch(`${control}/stop`, { method: 'POST' })).status).toBe(200);
    const down = await get(proxy);
    expect(down.status).toBe(531);
    expect(proxyStatus(down).error).toBe('connection_refused');
    await waitFor(
      async () => {
        const row = await kubectlOk(['get', 'origins', '-n', 'demo', '--no-headers'], { kubeconfig });
        return /\bFalse\s+connection_refused\b/.test(row);
      },
      { timeoutMs: 5_000, what: 'kubectl get origins to show connection_refused' },
    );

    const t1 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child?.once('exit', resolve));
    expect(code).toBe(0);
    expect(existsSync(kubeconfig)).toBe(false);
    if (process.env.ORIGINGUARD_E2E_TIMINGS)
      console.error(`[playground test] ready in ${readyMs} ms, stopped in ${Date.now() - t1} ms`);
  }, 150_000);
});
