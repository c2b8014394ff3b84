// `originguard operator`: flags (named as controller-runtime operators name
// them), logging, signals. The work itself is in operator.ts.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../errors.ts';
import { bindAddress, durationMs, withEnv } from '../flags.ts';
import { KubeClient } from '../kube/client.ts';
import { loadKubeConfig } from '../kube/kubeconfig.ts';
import { untilSignal } from '../process.ts';
import { PRODUCT_VERSION } from '../version.ts';
import { DEFAULT_SIDECAR_TEMPLATE, type SidecarTemplate } from './injection.ts';
import { OperatorMetrics } from './metrics.ts';
import {
  DEFAULT_LEASE,
  DEFAULT_NAMESPACE,
  DEFAULT_WEBHOOK_CERT_SECRET,
  DEFAULT_WEBHOOK_CONFIGURATION,
  DEFAULT_WEBHOOK_SERVICE,
  SYSTEM_NAMESPACES,
} from './names.ts';
import { Operator, type OperatorOptions } from './operator.ts';
import { serviceDnsNames } from './pki.ts';
import { DEFAULT_DENIED_NETWORKS, networkList, type ProbePolicy, parseSelector } from './probe-policy.ts';

const HELP = `Usage: originguard operator [options]

Injects the originguard sidecar into the pods Origins select, provisions the
sidecars' RBAC, and aggregates their OriginReports into each Origin's status.

Options (each also settable as ORIGINGUARD_<NAME>, e.g. ORIGINGUARD_LEADER_ELECT=true):
  --kubeconfig <file>                   Kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster)
  --namespace <ns>                      The operator's namespace: Lease, webhook Secret; never injected
                                        (default: POD_NAMESPACE, the in-cluster namespace, ${DEFAULT_NAMESPACE})
  --watch-namespaces <ns,...>           Only watch these namespaces (default: all)
  --metrics-bind-address <addr>         Prometheus /metrics (default :8080; 0 disables)
  --health-probe-bind-address <addr>    /healthz and /readyz (default :8081; 0 disables)
  --leader-elect                        Elect a leader for the reconcilers (run with 2+ replicas)
  --leader-election-id <name>           Lease name (default ${DEFAULT_LEASE})
  --leader-election-namespace <ns>      Lease namespace (default: --namespace)
  --leader-elect-lease-duration <d>     How long a Lease is valid without renewal (default 15s)
  --leader-elect-renew-deadline <d>     A leader that cannot renew for this long steps down (default 10s)
  --leader-elect-retry-period <d>       Time between tries to take or renew the Lease (default 2s)
  --webhook-bind-address <addr>         Injection webhook, HTTPS (default :9443; 0 disables)
  --webhook-configuration <name>        MutatingWebhookConfiguration whose caBundle is kept (default ${DEFAULT_WEBHOOK_CONFIGURATION})
  --webhook-service <name>              Service in front of the webhook, for certificate names (default ${DEFAULT_WEBHOOK_SERVICE})
  --webhook-host <name|ip>              Extra certificate name or IP (repeatable)
  --webhook-cert-secret <name>          Secret holding the webhook CA and certificate (default ${DEFAULT_WEBHOOK_CERT_SECRET})
  --webhook-cert-validity <d>           Serving certificate lifetime; renewed with a third left (default 8760h)
  --webhook-ca-validity <d>             CA lifetime (default 87600h)
  --webhook-cert-dir <dir>              Serve tls.crt/tls.key from this directory (e.g. a cert-manager Secret),
                                        re-read on renewal; the operator then keeps no CA, Secret or caBundle
  --excluded-namespaces <ns,...>        Never inject into these, besides kube-system, kube-public, kube-node-lease
                                        and the operator's namespace
  --sidecar-image <image>               Image of the injected sidecar (default ${DEFAULT_SIDECAR_TEMPLATE.image})
  --sidecar-mode <native|container>     Native sidecar (init container, restartPolicy Always) or plain container
                                        (default native)
  --sidecar-config <file>               YAML or JSON overriding sidecar settings (image, mode, resources, adminPort,
                                        imagePullPolicy, tokenExpirationSeconds, logLevel)
  --status-interval <d>                 Least time between two status writes of one Origin (default 1s)
  --no-origin-probe                     Never run the checklist from the operator's pod (default: run it when
                                        an Origin's pods fail, and when asked by kubectl originguard diagnose
                                        --from-operator); see docs/security.md
  --origin-probe-namespace-selector <s> Only probe Origins of namespaces with these labels, e.g.
                                        originguard.dev/operator-probe=enabled (default: every namespace)
  --origin-probe-min-interval <d>       At most one probe per Origin per this long (default 30s)
  --origin-probe-refresh <d>            Probe again while pods keep failing the same way (default 5m)
  --origin-probe-denied-networks <cidr,...>
                                        Never probe addresses in these networks (default ${DEFAULT_DENIED_NETWORKS.join(',')};
                                        an empty value denies none)
  --resync-period <d>                   Full relist of every watched resource (default 10m)
  --identity <name>                     This replica's name (default: POD_NAME or the host name)
  --log-level <level>                   fatal, error, warn, info, debug (default info)
  -h, --help                            Show this help
`;

const OPTIONS = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  'watch-namespaces': { type: 'string', multiple: true },
  'metrics-bind-address': { type: 'string', default: ':8080' },
  'health-probe-bind-address': { type: 'string', default: ':8081' },
  'leader-elect': { type: 'boolean', default: false },
  'leader-election-id': { type: 'string', default: DEFAULT_LEASE },
  'leader-election-namespace': { type: 'string' },
  'leader-elect-lease-duration': { type: 'string', default: '15s' },
  'leader-elect-renew-deadline': { type: 'string', default: '10s' },
  'leader-elect-retry-period': { type: 'string', default: '2s' },
  'webhook-bind-address': { type: 'string', default: ':9443' },
  'webhook-configuration': { type: 'string', default: DEFAULT_WEBHOOK_CONFIGURATION },
  'webhook-service': { type: 'string', default: DEFAULT_WEBHOOK_SERVICE },
  'webhook-host': { type: 'string', multiple: true },
  'webhook-cert-secret': { type: 'string', default: DEFAULT_WEBHOOK_CERT_SECRET },
  'webhook-cert-validity': { type: 'string', default: '8760h' },
  'webhook-ca-validity': { type: 'string', default: '87600h' },
  'webhook-cert-dir': { type: 'string' },
  'excluded-namespaces': { type: 'string', multiple: true },
  'sidecar-image': { type: 'string' },
  'sidecar-mode': { type: 'string' },
  'sidecar-config': { type: 'string' },
  'status-interval': { type: 'string', default: '1s' },
  'origin-probe': { type: 'boolean', default: true },
  'origin-probe-namespace-selector': { type: 'string', default: '' },
  'origin-probe-min-interval': { type: 'string', default: '30s' },
  'origin-probe-refresh': { type: 'string', default: '5m' },
  'origin-probe-denied-networks': { type: 'string', multiple: true },
  'resync-period': { type: 'string', default: '10m' },
  identity: { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = Record<string, string | boolean | string[] | undefined>;

const list = (v: unknown) =>
  ((v as string[] | undefined) ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');

function operatorNamespace(flag: string | undefined): string {
  if (flag !== undefined) return flag;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return DEFAULT_NAMESPACE;
  }
}

/** The sidecar settings: defaults, then --sidecar-config, then --sidecar-image / --sidecar-mode. */
export function sidecarTemplate(flags: Flags): SidecarTemplate {
  let t: SidecarTemplate = { ...DEFAULT_SIDECAR_TEMPLATE };
  const file = flags['sidecar-config'] as string | undefined;
  if (file !== undefined) {
    let overrides: unknown;
    try {
      overrides = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`--sidecar-config: cannot read ${file}: ${(err as Error).message}`);
    }
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
      throw new UsageError(`--sidecar-config: ${file} must hold a mapping of sidecar settings`);
    }
    const known = new Set(Object.keys(DEFAULT_SIDECAR_TEMPLATE));
    const unknown = Object.keys(overrides).filter((k) => !known.has(k));
    if (unknown.length > 0) {
      throw new UsageError(
        `--sidecar-config: unknown settings ${unknown.join(', ')}; known: ${[...known].join(', ')}`,
      );
    }
    t = { ...t, ...(overrides as Partial<SidecarTemplate>) };
  }
  if (flags['sidecar-image'] !== undefined) t.image = flags['sidecar-image'] as string;
  if (flags['sidecar-mode'] !== undefined) t.mode = flags['sidecar-mode'] as SidecarTemplate['mode'];
  if (t.mode !== 'native' && t.mode !== 'container') {
    throw new UsageError(`sidecar mode: must be native or container, got "${String(t.mode)}"`);
  }
  return { ...t, version: PRODUCT_VERSION };
}

/** The probe's policy from its flags; throws UsageError naming a bad one. */
export function probePolicy(flags: Flags): ProbePolicy {
  const denied =
    flags['origin-probe-denied-networks'] === undefined
      ? [...DEFAULT_DENIED_NETWORKS]
      : list(flags['origin-probe-denied-networks']);
  networkList(denied, 'origin-probe-denied-networks');
  return {
    enabled: flags['origin-probe'] !== false,
    namespaceSelector: parseSelector(
      (flags['origin-probe-namespace-selector'] as string | undefined) ?? '',
      'origin-probe-namespace-selector',
    ),
    deniedNetworks: denied,
    minIntervalMs: durationMs('origin-probe-min-interval', flags['origin-probe-min-interval'] as string),
    refreshMs: durationMs('origin-probe-refresh', flags['origin-probe-refresh'] as string),
  };
}

export function readOptions(flags: Flags): OperatorOptions {
  const namespace = operatorNamespace(flags.namespace as string | undefined);
  const webhook = bindAddress('webhook-bind-address', flags['webhook-bind-address'] as string);
  const service = flags['webhook-service'] as string;
  const hosts = list(flags['webhook-host']);
  return {
    namespace,
    watchNamespaces: list(flags['watch-namespaces']),
    identity: (flags.identity as string | undefined) ?? process.env.POD_NAME ?? hostname(),
    leaderElection: flags['leader-elect']
      ? {
          enabled: true,
          leaseName: flags['leader-election-id'] as string,
          namespace: (flags['leader-election-namespace'] as string | undefined) ?? namespace,
          leaseDurationMs: durationMs(
            'leader-elect-lease-duration',
            flags['leader-elect-lease-duration'] as string,
          ),
          renewDeadlineMs: durationMs(
            'leader-elect-renew-deadline',
            flags['leader-elect-renew-deadline'] as string,
          ),
          retryPeriodMs: durationMs(
            'leader-elect-retry-period',
            flags['leader-elect-retry-period'] as string,
          ),
        }
      : { enabled: false },
    statusIntervalMs: durationMs('status-interval', flags['status-interval'] as string),
    resyncIntervalMs: durationMs('resync-period', flags['resync-period'] as string),
    admission:
      webhook === undefined
        ? undefined
        : {
            bind: webhook,
            webhookConfigName: flags['webhook-configuration'] as string,
            secretName: flags['webhook-cert-secret'] as string,
            dnsNames: [...serviceDnsNames(service, namespace), ...hosts.filter((h) => isIP(h) === 0)],
            ipAddresses: hosts.filter((h) => isIP(h) !== 0),
            servingValidityMs: durationMs('webhook-cert-validity', flags['webhook-cert-validity'] as string),
            caValidityMs: durationMs('webhook-ca-validity', flags['webhook-ca-validity'] as string),
            excludedNamespaces: [
              ...new Set([...SYSTEM_NAMESPACES, namespace, ...list(flags['excluded-namespaces'])]),
            ],
            template: sidecarTemplate(flags),
            certDir: flags['webhook-cert-dir'] as string | undefined,
          },
    health: bindAddress('health-probe-bind-address', flags['health-probe-bind-address'] as string),
    metricsBind: bindAddress('metrics-bind-address', flags['metrics-bind-address'] as string),
    probe: probePolicy(flags),
  };
}

export async function runOperatorCommand(argv: string[]): Promise<number> {
  let flags: Flags;
  let options: OperatorOptions;
  try {
    flags = parseArgs({
      args: withEnv(argv, OPTIONS),
      options: OPTIONS,
      allowPositionals: false,
      allowNegative: true,
    }).values as Flags;
    if (flags.help === true) {
      process.stdout.write(HELP);
      return 0;
    }
    options = readOptions(flags);
  } catch (err) {
    process.stderr.write(`originguard operator: ${(err as Error).message}\n`);
    if (!(err instanceof UsageError)) process.stderr.write(`\n${HELP}`);
    return 2;
  }
  const logger = pino({ level: flags['log-level'] as string, base: { component: 'operator' } });
  let client: KubeClient;
  try {
    client = new KubeClient(await loadKubeConfig({ kubeconfig: flags.kubeconfig as string | undefined }));
  } catch (err) {
    process.stderr.write(`originguard operator: ${(err as Error).message}\n`);
    return 1;
  }
  const operator = new Operator(client, options, logger, new OperatorMetrics());
  try {
    await operator.start();
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    await operator.stop();
    return 1;
  }
  logger.info(
    { version: PRODUCT_VERSION, namespace: options.namespace, identity: options.identity },
    'operator started',
  );
  return untilSignal(logger, async (signal) => {
    logger.info({ signal }, 'stopping: finishing reconciles, releasing the lease');
    await operator.stop();
  });
}
