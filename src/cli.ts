// originguard: one binary, one subcommand per process kind. This file only dispatches.

const USAGE = `Usage: originguard <command> [options]

Commands:
  sidecar   Proxy edge traffic to declared origins; answer 531/536 with the precise cause
  operator  Inject the sidecar into selected pods and keep each Origin's status
  help      Show this help

Run 'originguard <command> --help' for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sidecar': {
      const { runSidecarCommand } = await import('./sidecar/command.ts');
      return runSidecarCommand(rest);
    }
    case 'operator': {
      const { runOperatorCommand } = await import('./operator/command.ts');
      return runOperatorCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`originguard: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

const code = await main(process.argv.slice(2));
// Long-running commands resolve once drained; do not wait on stray handles.
process.exit(code);
