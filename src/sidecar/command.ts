// `originguard sidecar`: flags, logging, signals. Standalone mode reads Origins
// from --config and watches the file.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { durationMs, portNumber, positiveInt, UsageError, withEnv } from '../flags.ts';
import { createAdminServer } from './admin.ts';
import { loadConfigFile, watchConfigFile } from './config-file.ts';
import { SidecarMetrics } from './metrics.ts';
import { Resolver } from './resolver.ts';
import { Sidecar } from './sidecar.ts';

const HELP = `Usage: originguard sidecar --config <file> [options]

Proxies edge traffic to the origins declared in <file> (Origin manifests, YAML,
as for kubectl apply). Answers 531 when the origin cannot be reached and 536 when
it does not answer in time, with the precise cause in Proxy-Status.

Options (each also settable as ORIGINGUARD_<NAME>, e.g. ORIGINGUARD_ADMIN_PORT):
  --config <file>              Origin manifests to serve; watched for changes
  --admin-port <port>          Port for /healthz, /readyz, /metrics, /status (default 9901)
  --admin-address <ip>         Address of the admin port (default 0.0.0.0)
  --dns-server <ip[:port]>     DNS server to use instead of /etc/resolv.conf's (repeatable)
  --log-level <level>          fatal, error, warn, info, debug (default info)
  --drain-timeout <duration>   On SIGTERM, time for requests in flight to finish (default 30s)
  --max-request-body <bytes>   Largest request body forwarded; 413 past it (default 104857600)
  --max-header-size <bytes>    Largest request header section; 431 past it (default 16384)
  --client-header-timeout <d>  Time for a client to send its headers; 408 past it (default 10s)
  --client-request-timeout <d> Time for a client to send its whole request; 408 past it (default 5m)
  -h, --help                   Show this help
`;

const OPTIONS = {
  config: { type: 'string' },
  'admin-port': { type: 'string', default: '9901' },
  'admin-address': { type: 'string', default: '0.0.0.0' },
  'dns-server': { type: 'string', multiple: true },
  'log-level': { type: 'string', default: 'info' },
  'drain-timeout': { type: 'string', default: '30s' },
  'max-request-body': { type: 'string', default: '104857600' },
  'max-header-size': { type: 'string', default: '16384' },
  'client-header-timeout': { type: 'string', default: '10s' },
  'client-request-timeout': { type: 'string', default: '5m' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : string | boolean;
};

export async function runSidecarCommand(argv: string[]): Promise<number> {
  let flags: Flags;
  try {
    flags = parseArgs({ args: withEnv(argv, OPTIONS), options: OPTIONS, allowPositionals: false })
      .values as Flags;
  } catch (err) {
    process.stderr.write(`originguard sidecar: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (flags.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const configPath = flags.config as string | undefined;
  if (configPath === undefined) {
    process.stderr.write(`originguard sidecar: --config <file> is required\n\n${HELP}`);
    return 2;
  }
  let settings: ReturnType<typeof readSettings>;
  try {
    settings = readSettings(flags);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`originguard sidecar: ${err.message}\n`);
    return 2;
  }

  const logger = pino({ level: flags['log-level'] as string, base: { component: 'sidecar' } });
  const initial = await loadConfigFile(configPath);
  if (!initial.ok) {
    process.stderr.write(
      `originguard sidecar: invalid configuration, nothing started:\n${initial.errors.map((e) => `  ${e}`).join('\n')}\n`,
    );
    return 1;
  }
  const metrics = new SidecarMetrics();
  const resolver = new Resolver(settings.dnsServers.length > 0 ? { servers: settings.dnsServers } : {});
  const sidecar = new Sidecar({
    logger,
    metrics,
    resolver,
    limits: settings.limits,
    maxBodyBytes: settings.maxBodyBytes,
  });
  let configErrors: string[] = [];
  const admin = createAdminServer(
    {
      get ready() {
        return sidecar.ready;
      },
      health: () => sidecar.health(),
      configErrors: () => configErrors,
    },
    metrics,
  );

  const first = await sidecar.apply(initial.origins);
  if (first.errors.length > 0) {
    process.stderr.write(
      `originguard sidecar: cannot start:\n${first.errors.map((e) => `  ${e}`).join('\n')}\n`,
    );
    await sidecar.drain(0);
    return 1;
  }
  try {
    await admin.listen({ port: settings.adminPort, host: settings.adminAddress });
  } catch (err) {
    process.stderr.write(
      `originguard sidecar: cannot listen on admin port ${settings.adminAddress}:${settings.adminPort}: ${(err as Error).message}\n`,
    );
    await sidecar.drain(0);
    return 1;
  }
  metrics.configReloads.labels('applied').inc(0);
  logger.info({ origins: first.applied, adminPort: settings.adminPort, config: configPath }, 'sidecar ready');

  const watcher = watchConfigFile(configPath, initial.digest, (result) => {
    if (!result.ok) {
      configErrors = result.errors;
      metrics.configReloads.labels('rejected').inc();
      logger.error(
        { errors: result.errors, config: configPath },
        'configuration change refused; still serving the last good configuration',
      );
      return;
    }
    sidecar.apply(result.origins).then(
      (applied) => {
        configErrors = applied.errors;
        metrics.configReloads.labels(applied.errors.length === 0 ? 'applied' : 'rejected').inc();
        if (applied.errors.length > 0)
          logger.error({ errors: applied.errors }, 'configuration change refused');
        else logger.info({ origins: applied.applied }, 'configuration change applied');
      },
      (err: unknown) => logger.error({ err }, 'configuration change failed'),
    );
  });

  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal, drainTimeoutMs: settings.drainMs }, 'draining: not accepting new connections');
      watcher.close();
      sidecar.drain(settings.drainMs).then(
        async (clean) => {
          await admin.close();
          logger.info(
            { clean },
            clean ? 'drained; exiting' : 'drain timeout reached; closed remaining connections',
          );
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'drain failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function readSettings(flags: Flags) {
  return {
    adminPort: portNumber('admin-port', flags['admin-port'] as string),
    adminAddress: flags['admin-address'] as string,
    dnsServers: (flags['dns-server'] as string[] | undefined) ?? [],
    drainMs: durationMs('drain-timeout', flags['drain-timeout'] as string),
    maxBodyBytes: positiveInt('max-request-body', flags['max-request-body'] as string),
    limits: {
      maxHeaderBytes: positiveInt('max-header-size', flags['max-header-size'] as string),
      headersTimeoutMs: durationMs('client-header-timeout', flags['client-header-timeout'] as string),
      requestTimeoutMs: durationMs('client-request-timeout', flags['client-request-timeout'] as string),
      keepAliveTimeoutMs: 65_000,
    },
  };
}
