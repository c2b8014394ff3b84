// Finds the external tools the bench needs (nginx, wrk, taskset) and installs the Debian packages
// when it can (root with apt-get), or says exactly how to.
import { spawnSync } from 'node:child_process';

export interface Tool {
  name: string;
  path: string;
  version: string;
}

const PACKAGES: Record<string, string> = { nginx: 'nginx-light', wrk: 'wrk', taskset: 'util-linux' };

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

function version(bin: string): string {
  const args: Record<string, string[]> = { nginx: ['-v'], wrk: ['-v'], taskset: ['--version'] };
  const r = spawnSync(bin, args[bin] ?? ['--version'], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? '';
}

/** Returns the tools, installing missing Debian packages if allowed; throws with instructions otherwise. */
export function ensureTools(names: readonly string[], install: boolean): Tool[] {
  let missing = names.filter((n) => which(n) === undefined);
  if (missing.length > 0) {
    const pkgs = missing.map((n) => PACKAGES[n] ?? n);
    const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
    const canInstall = install && process.getuid?.() === 0 && which('apt-get') !== undefined;
    if (!canInstall) {
      throw new Error(
        `missing ${missing.join(', ')}. Install with:\n  ${process.getuid?.() === 0 ? '' : 'sudo '}sh -c '${cmd}'\n` +
          '(run as root without --no-install and the bench installs them itself)',
      );
    }
    process.stdout.write(`bench: installing ${pkgs.join(' ')} (${cmd})\n`);
    const r = spawnSync('sh', ['-c', cmd], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
    if (pkgs.some((p) => p.startsWith('nginx'))) {
      process.stdout.write(
        'bench: note: on a host with systemd, Debian may have started its own nginx service; the bench runs private instances and does not use it\n',
      );
    }
    missing = names.filter((n) => which(n) === undefined);
    if (r.status !== 0 || missing.length > 0)
      throw new Error(`could not install ${missing.join(', ')}: ${cmd}`);
  }
  return names.map((name) => ({ name, path: which(name) ?? name, version: version(name) }));
}
