// Command-line flags shared by every subcommand: each flag is also settable as
// ORIGINGUARD_<NAME> (flags win over the environment, which wins over defaults),
// and bad values fail with a message that names the flag and what it expects.
import { parseDuration } from './api/duration.ts';
import { UsageError } from './errors.ts';

/** `--admin-port` → `ORIGINGUARD_ADMIN_PORT`. */
export const envName = (flag: string) => `ORIGINGUARD_${flag.toUpperCase().replaceAll('-', '_')}`;

/** The arguments an ORIGINGUARD_* boolean stands for; --no-<flag> turns off one that is on by default. */
function booleanArgs(name: string, value: string, option: { default?: unknown }): string[] {
  if (!['true', 'false'].includes(value)) {
    throw new UsageError(`${envName(name)}: must be true or false, got "${value}"`);
  }
  if (value === 'true') return [`--${name}`];
  return option.default === true ? [`--no-${name}`] : [];
}

/**
 * Appends `--flag value` for every ORIGINGUARD_* variable whose flag is not on
 * the command line. Repeatable flags take a comma-separated list.
 */
export function withEnv(
  argv: readonly string[],
  options: Readonly<Record<string, { type: string; multiple?: boolean; default?: unknown }>>,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const out = [...argv];
  for (const [name, option] of Object.entries(options)) {
    const value = env[envName(name)];
    if (value === undefined || value === '') continue;
    if (argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `--no-${name}`)) continue;
    if (option.type === 'boolean') out.push(...booleanArgs(name, value, option));
    else for (const v of option.multiple === true ? value.split(',') : [value]) out.push(`--${name}`, v);
  }
  return out;
}

export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`--${name}: must be a positive integer, got "${value}"`);
  return n;
}

export function portNumber(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`--${name}: must be 0-65535, got "${value}"`);
  return n;
}

export function durationMs(name: string, value: string): number {
  const ms = parseDuration(value);
  if (Number.isNaN(ms))
    throw new UsageError(`--${name}: must be a duration such as 500ms, 10s or 5m, got "${value}"`);
  return ms;
}

/** "host:port" or ":port" (all addresses) or "0" (disabled), as controller-runtime's bind-address flags take. */
export function bindAddress(name: string, value: string): { host: string; port: number } | undefined {
  if (value === '0') return undefined;
  const m = /^(.*):(\d+)$/.exec(value);
  if (m === null) throw new UsageError(`--${name}: must be host:port, :port or 0 (off), got "${value}"`);
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '0.0.0.0' : host, port: portNumber(name, m[2] as string) };
}
