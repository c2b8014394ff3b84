// Podman as the project's image scripts, tests and benchmark drive it: the
// project's containers.conf, the image `npm run image` builds, and the flags
// that run a container the way the chart's and the injected sidecar's security
// context run it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = new URL('../', import.meta.url).pathname;

export const IMAGE = process.env.ORIGINGUARD_IMAGE ?? 'originguard:dev';

/** Podman reads hack/podman/containers.conf (runc, cgroupfs), unless the user points elsewhere. */
export const PODMAN_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? `${repo}hack/podman/containers.conf`,
};

/**
 * A pod's restricted security context as Podman flags: read-only root with only
 * /tmp writable (an emptyDir), uid and gid 65532, no capabilities, no privilege
 * escalation. Host network, so the container meets servers on 127.0.0.1.
 */
export const POD_LIKE = [
  '--read-only',
  '--read-only-tmpfs=false',
  '--tmpfs=/tmp:rw,mode=1777,size=64m',
  '--user=65532:65532',
  '--cap-drop=ALL',
  '--security-opt=no-new-privileges',
  '--network=host',
];

/** Runs podman and returns its stdout; throws with its stderr on failure. */
export async function podman(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await run('podman', [...args], {
    env: PODMAN_ENV,
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout;
}
