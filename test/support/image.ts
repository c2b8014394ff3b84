// The container image under test: built from the Dockerfile by hack/image.sh
// (fast when nothing changed) and run with Podman the way a pod runs it
// (hack/podman.ts), on the host network so that it meets the tests' loopback
// servers and control plane.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { collectJsonLines } from '../../hack/child-output.ts';
import { IMAGE, POD_LIKE, PODMAN_ENV, podman } from '../../hack/podman.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;

export { IMAGE, POD_LIKE, PODMAN_ENV, podman } from '../../hack/podman.ts';

/**
 * Builds the image (hack/image.sh --no-install) and runs it once. Returns why the
 * image tests cannot run here, or undefined when they can. A build that fails
 * for any other reason than missing tools throws: that is a broken Dockerfile.
 */
export async function imageUnavailable(): Promise<string | undefined> {
  const built = await new Promise<{ code: number; stderr: string }>((resolve) => {
    const child = spawn('bash', [`${repo}hack/image.sh`, '--no-install'], {
      env: PODMAN_ENV,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (err) => resolve({ code: -1, stderr: err.message }));
    child.on('exit', (code) => resolve({ code: code ?? -1, stderr }));
  });
  if (built.code === 3) return `Podman is not installed (npm run image installs it): ${built.stderr.trim()}`;
  if (built.code !== 0)
    throw new Error(`hack/image.sh failed (exit ${built.code}):\n${built.stderr.slice(-4000)}`);
  try {
    await podman(['run', '--rm', ...POD_LIKE, IMAGE, '--help']);
  } catch (err) {
    return `Podman cannot run a container on this machine: ${(err as Error).message.slice(0, 2000)}`;
  }
  return undefined;
}

export interface Container {
  readonly name: string;
  /** JSON log lines, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the container's exit code (podman run's). */
  readonly exited: Promise<number | null>;
  tail(lines?: number): string;
  /** Sends a signal to the container's PID 1, as the kubelet does. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** `podman diff`: what changed in the container's filesystem compared with the image. */
  diff(): Promise<string[]>;
  /** Removes the container, running or not. */
  remove(): Promise<void>;
}

/**
 * `podman run` of the image, attached, with POD_LIKE and `mounts` (read-only):
 * the container is kept after it exits (no --rm) so that diff() can look at it.
 */
export function startContainer(args: readonly string[], mounts: Record<string, string> = {}): Container {
  const name = `og-test-${randomBytes(4).toString('hex')}`;
  const volumes = Object.entries(mounts).map(([host, inside]) => `--volume=${host}:${inside}:ro`);
  const child = spawn('podman', ['run', `--name=${name}`, ...POD_LIKE, ...volumes, IMAGE, ...args], {
    env: PODMAN_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const raw: string[] = [];
  collectJsonLines(child.stdout, { logs, raw });
  child.stderr?.on('data', (d: Buffer) => raw.push(...d.toString().split('\n')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    name,
    logs,
    exited,
    tail: (n = 40) => raw.slice(-n).join('\n'),
    async signal(signal) {
      await podman(['kill', `--signal=${signal}`, name]);
    },
    async diff() {
      return (await podman(['diff', name])).split('\n').filter((l) => l !== '');
    },
    async remove() {
      await podman(['rm', '--force', '--time=0', name]).catch(() => undefined);
    },
  };
}

/** Every path in the image's filesystem, from `podman export` of a container that never ran. */
export async function imagePaths(): Promise<string[]> {
  const name = `og-test-${randomBytes(4).toString('hex')}`;
  await podman(['create', `--name=${name}`, IMAGE]);
  try {
    const { stdout } = await run('bash', ['-c', `podman export ${name} | tar -t`], {
      env: PODMAN_ENV,
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout.split('\n').filter((p) => p !== '');
  } finally {
    await podman(['rm', '--force', name]);
  }
}
