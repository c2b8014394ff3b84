// The helm binary for cluster tests: built by hack/test-binaries.sh next to kubectl
// (same cache dir as kube-apiserver), else `helm` on PATH. Runs against the shared
// test control plane with its admin kubeconfig.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { kubeconfigPath, kubectlBinary } from './fixtures.ts';

/** Path of the helm binary next to the control plane's kubectl, or `helm` (PATH). */
export function helmBinary(): string {
  const kubectl = kubectlBinary();
  const beside = join(dirname(kubectl), 'helm');
  return kubectl.includes('/') && existsSync(beside) ? beside : 'helm';
}

export interface HelmResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs helm with the test control plane's kubeconfig. Never throws on a non-zero exit: check `code`. */
export function helm(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    execFile(
      helmBinary(),
      args,
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfigPath(),
          // Keep helm's cache, config and data out of the user's home.
          HELM_CACHE_HOME: join(dirname(kubeconfigPath()), 'helm-cache'),
          HELM_CONFIG_HOME: join(dirname(kubeconfigPath()), 'helm-config'),
          HELM_DATA_HOME: join(dirname(kubeconfigPath()), 'helm-data'),
        },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`helm ${args.join(' ')}: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ stdout, stderr, code: error ? Number(error.code) : 0 });
      },
    );
  });
}

/** Runs helm and returns stdout; throws with helm's stderr if it fails. */
export async function helmOk(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await helm(args, opts);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${r.code}:\n${r.stderr || r.stdout}`);
  return r.stdout;
}
