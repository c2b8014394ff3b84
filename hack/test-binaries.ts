// Locates the control plane's binaries: envtest's environment variables first,
// else the cache that hack/test-binaries.sh fills (building once, with Go).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlaneError, tail } from './supervisor.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Paths of the binaries the control plane runs. */
export interface Binaries {
  kubeApiserver: string;
  etcd: string;
  /** Absent when the user's KUBEBUILDER_ASSETS has none: no GC, no default ServiceAccounts, no Deployments. */
  kubeControllerManager?: string;
  /** kubectl matching the control plane when one was built or given; otherwise `kubectl` from PATH. */
  kubectl: string;
  /** Directory that holds kube-apiserver. */
  dir: string;
}

function executable(path: string | undefined): path is string {
  return path !== undefined && path !== '' && existsSync(path);
}

/**
 * Finds the binaries, honouring the envtest conventions first
 * (TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD, TEST_ASSET_KUBE_CONTROLLER_MANAGER,
 * TEST_ASSET_KUBECTL, KUBEBUILDER_ASSETS), else builds them once with
 * hack/test-binaries.sh (Go needed). `onBuild` is told when a build is needed.
 */
export async function findBinaries(onBuild?: (message: string) => void): Promise<Binaries> {
  const env = process.env;
  const script = join(repoRoot, 'hack', 'test-binaries.sh');
  const cached = await run('bash', [script, '--check']).then(
    (r) => r.code === 0,
    () => false,
  );
  if (!cached) {
    onBuild?.(
      'building kube-apiserver, kube-controller-manager, etcd, kubectl and helm from their Go modules ' +
        '(first run only: about 12 minutes on 2 cores, and ~5 GB of Go module and build caches; later runs reuse the cache)',
    );
  }
  const r = await run('bash', [script], { inheritStderr: onBuild !== undefined });
  if (r.code !== 0) {
    throw new ControlPlaneError(
      'BINARIES_UNAVAILABLE',
      `hack/test-binaries.sh failed (exit ${r.code}): ${tail(r.stderr, 30) || 'no output'}\n` +
        'Install Go (see docs/development.md), or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd.',
    );
  }
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  const inDir = (name: string): string | undefined =>
    executable(join(dir, name)) ? join(dir, name) : undefined;
  const kubeApiserver = env.TEST_ASSET_KUBE_APISERVER || inDir('kube-apiserver');
  const etcd = env.TEST_ASSET_ETCD || inDir('etcd');
  const kcm = env.TEST_ASSET_KUBE_CONTROLLER_MANAGER || inDir('kube-controller-manager');
  const kubectl = env.TEST_ASSET_KUBECTL || inDir('kubectl') || 'kubectl';
  if (!executable(kubeApiserver) || !executable(etcd)) {
    throw new ControlPlaneError('BINARIES_UNAVAILABLE', `kube-apiserver or etcd missing in ${dir}`);
  }
  return {
    kubeApiserver,
    etcd,
    ...(executable(kcm) ? { kubeControllerManager: kcm } : {}),
    kubectl,
    dir: dirname(kubeApiserver),
  };
}

function run(
  cmd: string,
  args: string[],
  opts: { inheritStderr?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') rej(error);
      else res({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
    if (opts.inheritStderr) child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
  });
}
