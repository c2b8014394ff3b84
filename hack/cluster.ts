// `npm run cluster`: a local Kubernetes control plane for trying originguard
// without a cluster. Prints exactly one line on stdout, `export KUBECONFIG=<path>`,
// once the API server is ready and crds/ is applied (everything else goes to
// stderr); runs until Ctrl-C or SIGTERM, then stops everything and cleans up.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ControlPlane, findBinaries, startControlPlane } from './control-plane.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (message: string): void => console.error(`[cluster] ${message}`);

function kubectl(cp: ControlPlane, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(
      cp.binaries.kubectl,
      args,
      { env: { ...process.env, KUBECONFIG: cp.kubeconfig } },
      (error, stdout, stderr) => {
        if (error) rej(new Error(`kubectl ${args.join(' ')} failed: ${stderr || error.message}`));
        else res(stdout);
      },
    );
  });
}

/** Installs crds/*.yaml, if any, and waits until the API serves them. */
async function applyCrds(cp: ControlPlane): Promise<void> {
  const dir = join(repoRoot, 'crds');
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  } catch {
    // No crds/ yet: nothing to install.
  }
  if (files.length === 0) return;
  process.stderr.write(await kubectl(cp, ['apply', '--server-side', '-f', dir]));
  await kubectl(cp, ['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const binaries = await findBinaries(say);
  const cp = await startControlPlane({ binaries, log: say });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the control plane`);
    cp.stop().then(
      () => {
        say('stopped, temporary files removed');
        process.exit(0);
      },
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));

  try {
    await applyCrds(cp);
  } catch (error) {
    await cp.stop();
    throw error;
  }
  const mib = (n: number): string => `${Math.round(n / 2 ** 20)} MiB`;
  const rss = Object.entries(cp.rss())
    .map(([name, bytes]) => `${name} ${mib(bytes)}`)
    .join(', ');
  say(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${cp.server} (${rss})`);
  say(`kubectl: ${cp.binaries.kubectl}; logs: ${join(cp.dir, 'logs')}`);
  if (!cp.controllerManager)
    say('no kube-controller-manager: no GC, no Deployments, no default ServiceAccounts');
  say('press Ctrl-C to stop');
  process.stdout.write(`export KUBECONFIG=${cp.kubeconfig}\n`);
  // Stay alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}

main().catch((error: unknown) => {
  console.error(`[cluster] ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
