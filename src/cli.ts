// originguard: one binary, one subcommand per process kind. This file only
// dispatches. Run as `kubectl-originguard` (a kubectl plugin, kubectl looks it
// up by that name on PATH) it offers the commands for people: diagnose, status.
import { basename } from 'node:path';
import { PRODUCT_VERSION } from './version.ts';

const plugin = basename(process.argv[1] ?? '').startsWith('kubectl-originguard');
const prog = plugin ? 'kubectl originguard' : 'originguard';

const USAGE = `Usage: ${prog} <command> [options]

Commands:
${
  plugin
    ? ''
    : `  sidecar   Proxy edge traffic to declared origins; answer 531/536 with the precise cause
  operator  Inject the sidecar into selected pods and keep each Origin's status
`
}  diagnose  Run the 531/536 checklist (DNS, TCP, TLS, HTTP) against an origin and give a verdict
  status    Show Origins' status and which pods fail with which cause
  version   Print the version
  help      Show this help

Run '${prog} <command> --help' for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'sidecar' && !plugin) {
    const { runSidecarCommand } = await import('./sidecar/command.ts');
    return runSidecarCommand(rest);
  }
  if (command === 'operator' && !plugin) {
    const { runOperatorCommand } = await import('./operator/command.ts');
    return runOperatorCommand(rest);
  }
  switch (command) {
    case 'diagnose': {
      const { runDiagnoseCommand } = await import('./diagnose/command.ts');
      return runDiagnoseCommand(rest, prog);
    }
    case 'status': {
      const { runStatusCommand } = await import('./diagnose/status-command.ts');
      return runStatusCommand(rest, prog);
    }
    case 'version':
    case '--version':
      process.stdout.write(`originguard ${PRODUCT_VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`${prog}: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

const code = await main(process.argv.slice(2));
// Long-running commands resolve once drained; do not wait on stray handles.
process.exit(code);
