// The benchmark's peer: originguard's operator as it was at a git ref (before the
// slim cache), built from that commit's sources with this checkout's
// node_modules, and a Lease held for it by nobody so it runs as a standby replica.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type KubeClient, resourcePath } from '../../src/kube/client.ts';
import { microTime } from '../../src/kube/time.ts';

/** Builds the bundle of `ref` under .cache/bench-peer/<ref> (once) and returns its bin/originguard.js. */
export function buildPeer(root: string, ref: string, say: (line: string) => void): string {
  const dir = join(root, '.cache', 'bench-peer', ref);
  const cli = join(dir, 'bin', 'originguard.js');
  if (existsSync(join(dir, 'dist', 'originguard.mjs'))) return cli;
  say(`peer: building the operator of ${ref} in ${dir}`);
  mkdirSync(dir, { recursive: true });
  const tar = execFileSync('git', ['archive', '--format=tar', ref], { cwd: root, maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  if (!existsSync(join(dir, 'node_modules')))
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, ['hack/build.ts'], { cwd: dir, stdio: 'inherit' });
  return cli;
}

/** Creates Lease `name`, held by a holder that never renews but whose lease lasts a day. */
export async function holdLease(admin: KubeClient, namespace: string, name: string): Promise<void> {
  await admin.apply(
    resourcePath({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace, name }),
    {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace },
      spec: {
        holderIdentity: 'bench-holder',
        leaseDurationSeconds: 86_400,
        renewTime: microTime(new Date()),
      },
    },
    'originguard-bench',
  );
}
