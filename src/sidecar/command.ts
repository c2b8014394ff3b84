// `originguard sidecar`: flags, logging, signals. Standalone mode reads Origins
// from --config and watches the file; cluster mode (--cluster, as the operator
// injects it) watches the Origins that select its pod, in cluster-command.ts,
// loaded only then so the standalone sidecar never loads the Kubernetes code.
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { UsageError } from '../errors.ts';
import { withEnv } from '../flags.ts';
import { drainOnSignal } from '../process.ts';
import { Resolver } from '../upstream/resolver.ts';
import { createAdminServer } from './admin.ts';
import { loadConfigFile, watchConfigFile } from './config-file.ts';
import { SidecarMetrics } from './metrics.ts';
import { SIDECAR_DEFAULTS as D, readSettings, type SidecarSettings } from './settings.ts';
import { Sidecar } from './sidecar.ts';

const HELP = `Usage: originguard sidecar --config <file> [options]
       originguard sidecar --cluster [options]

Proxies edge traffic to the origins declared in <file> (Origin manifests, YAML,
as for kubectl apply), or in a pod (--cluster) to the Origins that select the
pod. Answers 531 when the origin cannot be reached and 536 when it does not
answer in time, with the precise cause in Proxy-Status.

Options (each also settable as ORIGINGUARD_<NAME>, e.g. ORIGINGUARD_ADMIN_PORT):
  --config <file>              Origin manifests to serve; watched for changes
  --cluster                    Serve the Origins selecting this pod and write its
                               OriginReports (reads ORIGINGUARD_POD_NAME, _POD_NAMESPACE,
                               _POD_UID, _SERVICE_ACCOUNT, _TOKEN_FILE, _CA_FILE and
                               KUBERNETES_SERVICE_HOST/PORT, as the webhook sets them)
  --pod-labels-file <file>     Cluster: the pod's labels (downward API; default:
                               labels next to the token file)
  --report-debounce <d>        Cluster: window coalescing health changes into one
                               report write (default ${D.reportDebounce})
  --report-heartbeat <d>       Cluster: report rewrite interval while the origin is
                               unreachable (default ${D.reportHeartbeat})
  --listen-address <ip>        Bind every Origin's listener on this address instead of
                               its spec.listen.address (e.g. only the pod's own IP)
  --admin-port <port>          Port for /healthz, /readyz, /metrics, /status (default ${D.adminPort})
  --admin-address <ip>         Address of the admin port (default ${D.adminAddress})
  --dns-server <ip[:port]>     DNS server to use instead of /etc/resolv.conf's (repeatable)
  --log-level <level>          fatal, error, warn, info, debug (default ${D.logLevel})
  --drain-timeout <duration>   On SIGTERM, time for requests in flight to finish (default ${D.drainTimeout})
  --max-request-body <bytes>   Largest request body forwarded; 413 past it (default ${D.maxRequestBody})
  --request-buffer-memory <bytes>
                               Memory for request bodies received before forwarding,
                               all Origins together; bodies that do not fit stream
                               (default ${D.requestBufferMemory})
  --max-header-size <bytes>    Largest request header section; 431 past it (default ${D.maxHeaderSize})
  --client-header-timeout <d>  Time for a client to send its headers; 408 past it (default ${D.clientHeaderTimeout})
  --client-request-timeout <d> Time for a client to send its whole request; 408 past it (default ${D.clientRequestTimeout})
  -h, --help                   Show this help
`;

const OPTIONS = {
  config: { type: 'string' },
  cluster: { type: 'boolean' },
  'pod-labels-file': { type: 'string' },
  'listen-address': { type: 'string' },
  'report-debounce': { type: 'string', default: D.reportDebounce },
  'report-heartbeat': { type: 'string', default: D.reportHeartbeat },
  'admin-port': { type: 'string', default: String(D.adminPort) },
  'admin-address': { type: 'string', default: D.adminAddress },
  'dns-server': { type: 'string', multiple: true },
  'log-level': { type: 'string', default: D.logLevel },
  'drain-timeout': { type: 'string', default: D.drainTimeout },
  'max-request-body': { type: 'string', default: String(D.maxRequestBody) },
  'request-buffer-memory': { type: 'string', default: String(D.requestBufferMemory) },
  'max-header-size': { type: 'string', default: String(D.maxHeaderSize) },
  'client-header-timeout': { type: 'string', default: D.clientHeaderTimeout },
  'client-request-timeout': { type: 'string', default: D.clientRequestTimeout },
  help: { type: 'boolean', short: 'h' },
} as const;

const parseFlags = (argv: string[]) =>
  parseArgs({ args: withEnv(argv, OPTIONS), options: OPTIONS, allowPositionals: false }).values;

export async function runSidecarCommand(argv: string[]): Promise<number> {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`originguard sidecar: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (flags.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const configPath = flags.config;
  const cluster = flags.cluster === true;
  if ((configPath === undefined) === !cluster) {
    process.stderr.write(`originguard sidecar: give either --config <file> or --cluster\n\n${HELP}`);
    return 2;
  }
  let settings: SidecarSettings;
  try {
    settings = readSettings(flags);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`originguard sidecar: ${err.message}\n`);
    return 2;
  }

  const logger = pino({ level: flags['log-level'], base: { component: 'sidecar' } });
  if (cluster) {
    const { runClusterSidecar } = await import('./cluster-command.ts');
    return runClusterSidecar(settings, logger);
  }
  return runStandalone(configPath as string, settings, logger);
}

async function runStandalone(configPath: string, settings: SidecarSettings, logger: Logger): Promise<number> {
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
    requestBufferMemory: settings.requestBufferMemory,
    listenAddress: settings.listenAddress,
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
  logger.info(
    {
      origins: first.applied,
      adminPort: settings.adminPort,
      config: configPath,
      sinceProcessStartMs: Math.round(performance.now()),
    },
    'sidecar ready',
  );

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

  return drainOnSignal(logger, settings.drainMs, async () => {
    watcher.close();
    const clean = await sidecar.drain(settings.drainMs);
    await admin.close();
    return clean;
  });
}
