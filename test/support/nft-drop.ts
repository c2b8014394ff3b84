/**
 * A real network rule that tells one process's traffic from another's: an nft
 * table of its own in the host's network namespace that drops TCP packets a
 * given user's sockets send to one port (`meta skuid U tcp dport P drop`). A
 * sidecar run as that user (the injected pod's runAsUser) then gets connection
 * timeouts from the origin while a process of another user (the operator, root
 * here) reaches it: two vantage points that disagree, as a NetworkPolicy or node
 * egress rule makes them disagree in a cluster.
 *
 * Needs root (CAP_NET_ADMIN in the host namespace) and nft. The rule matches only
 * that user and port, so other processes on the machine are untouched; the table
 * is deleted by remove(), and on process exit if a test forgot.
 */
import { execFileSync } from 'node:child_process';

export type NftAvailability = { ok: true } | { ok: false; reason: string };

const tables = new Set<string>();
let exitHook = false;
let counter = 0;

function nft(args: string[]): void {
  execFileSync('nft', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
}

/** Whether host-namespace nft rules can be made here; the reason when not (printed by the skip). */
export function nftAvailable(): NftAvailability {
  if (process.getuid?.() !== 0)
    return {
      ok: false,
      reason: `needs root for nft in the host network namespace (uid ${process.getuid?.()})`,
    };
  try {
    nft(['list', 'tables']);
    return { ok: true };
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return {
      ok: false,
      reason: `nft does not work here: ${(e.stderr?.toString().trim() || e.message).split('\n')[0]}`,
    };
  }
}

export interface DropRule {
  readonly table: string;
  remove(): void;
}

/** Drops every TCP packet that sockets of `uid` send to `port` (on any address). */
export function dropFromUser(uid: number, port: number): DropRule {
  const table = `og_test_${process.pid}_${++counter}`;
  nft(['add', 'table', 'inet', table]);
  tables.add(table);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const t of tables) {
        try {
          nft(['delete', 'table', 'inet', t]);
        } catch {
          // Already gone.
        }
      }
    });
  }
  nft(['add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; }']);
  nft([
    'add',
    'rule',
    'inet',
    table,
    'out',
    'meta',
    'skuid',
    String(uid),
    'tcp',
    'dport',
    String(port),
    'drop',
  ]);
  return {
    table,
    remove() {
      if (!tables.delete(table)) return;
      nft(['delete', 'table', 'inet', table]);
    },
  };
}
