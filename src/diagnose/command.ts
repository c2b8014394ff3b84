// `originguard diagnose TARGET` (also `kubectl originguard diagnose`): runs the
// checklist against a URL, host:port, or an Origin (from --config or from the
// cluster, with its sidecars' reports), prints it as it runs and the verdict,
// and exits with the code of the verdict's class (docs/diagnose.md).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { OriginManifest } from '../api/origin.ts';
import { parseOrigins } from '../api/origin-documents.ts';
import { validateOriginObject } from '../api/validate.ts';
import { UsageError } from '../errors.ts';
import { durationMs } from '../flags.ts';
import { diagnose, EXIT, exitCodeOf } from './diagnosis.ts';
import { InvalidConfigError, OriginUnavailableError } from './errors.ts';
import {
  type ParsedTarget,
  type Plan,
  type PlanFlags,
  parseTarget,
  planForAddress,
  planForOrigin,
} from './plan.ts';
import { renderHeader, renderVerdict, StepPrinter } from './render.ts';
import { sidecarView } from './status-view.ts';
import { Progress, styleFor } from './terminal.ts';
import type { Vantage } from './vantage.ts';

const help = (prog: string) => `Usage: ${prog} diagnose TARGET [options]

Runs the checklist an operator runs by hand for a 531/536 (DNS per resolver, TCP
to every address, TLS with every address, one HTTP request), the way the
sidecar connects, and gives a verdict: the RFC 9209 cause the sidecar would
report, the status it would answer, the evidence and the fix.

TARGET:
  https://shop.example:8443/health   a URL (http:// or https://)
  shop.example:8080, [::1]:8080      host:port (plain HTTP; --tls for TLS)
  origin/NAME                        an Origin: from --config FILE, else from the
                                     cluster (with what its sidecars report)

Options:
  --config <file>            Origin manifests (as the sidecar's --config) to find origin/NAME in
  -n, --namespace <ns>       Namespace of origin/NAME (default: the context's, else default)
      --context <name>       kubeconfig context to use
      --kubeconfig <file>    kubeconfig (default: KUBECONFIG, then ~/.kube/config)
  --dns-server <ip[:port]>   DNS server instead of resolv.conf's, as the sidecar's flag (repeatable)
  --tls                      host:port targets: connect with TLS
  --ca-file <file>           PEM CA(s) to verify the origin's certificate against (default: system roots)
  --server-name <name>       SNI to send and name to check (default: the host)
  --insecure                 Do not enforce certificate verification: failures are still shown,
                             loudly, because they would stop the sidecar
  --connect-timeout <d>      Per address: DNS, TCP and TLS (default: the Origin's, else 5s)
  --response-timeout <d>     Request sent to first response byte (default: the Origin's, else 60s)
  --path <path>              Path requested (default: the URL's, else /)
  --host-header <host>       Host header sent (default: what the sidecar sends)
  --from-operator            origin/NAME in a cluster: have the operator run the checklist from its own
                             pod, and show its result and where the failure is (pods, nodes, zones);
                             needs patch on origins (docs/diagnose.md)
  --wait <d>                 --from-operator: how long to wait for the operator's answer (default 2m)
  -o, --output <format>      text (default), json or yaml (schema: docs/diagnose.md)
  -h, --help                 Show this help

Exit codes: 0 reachable; 80 DNS, 81 refused, 82 connect timeout, 83 unroutable or
prohibited, 84 reset during connect, 85 TLS, 86 no (valid) response in time,
87 cannot tell from here; 64 bad usage, 65 invalid --config, 69 cluster unavailable.
`;

const OPTIONS = {
  config: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  context: { type: 'string' },
  kubeconfig: { type: 'string' },
  'dns-server': { type: 'string', multiple: true },
  tls: { type: 'boolean' },
  'ca-file': { type: 'string' },
  'server-name': { type: 'string' },
  insecure: { type: 'boolean' },
  'connect-timeout': { type: 'string' },
  'response-timeout': { type: 'string' },
  path: { type: 'string' },
  'host-header': { type: 'string' },
  'from-operator': { type: 'boolean' },
  wait: { type: 'string' },
  output: { type: 'string', short: 'o', default: 'text' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

async function planFlags(flags: Flags): Promise<PlanFlags> {
  let ca: PlanFlags['ca'];
  if (flags['ca-file'] !== undefined) {
    const path = flags['ca-file'];
    const pem = await readFile(path, 'utf8').catch((err: Error) => {
      throw new UsageError(`--ca-file: cannot read ${path}: ${err.message}`);
    });
    if (!pem.includes('-----BEGIN CERTIFICATE-----'))
      throw new UsageError(`--ca-file: ${path} holds no PEM certificate`);
    ca = { path, pem };
  }
  if (flags.path !== undefined && !flags.path.startsWith('/'))
    throw new UsageError(`--path: must start with /, got "${flags.path}"`);
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(flags['server-name'] === undefined ? {} : { serverName: flags['server-name'] }),
    ...(flags.insecure === true ? { insecure: true } : {}),
    ...(flags.tls === true ? { tls: true } : {}),
    ...(flags['connect-timeout'] === undefined
      ? {}
      : { connectTimeoutMs: durationMs('connect-timeout', flags['connect-timeout']) }),
    ...(flags['response-timeout'] === undefined
      ? {}
      : { responseTimeoutMs: durationMs('response-timeout', flags['response-timeout']) }),
    ...(flags.path === undefined ? {} : { path: flags.path }),
    ...(flags['host-header'] === undefined ? {} : { hostHeader: flags['host-header'] }),
    ...(flags['dns-server'] === undefined ? {} : { resolver: { servers: flags['dns-server'] } }),
  };
}

const readIfPresent = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** origin/NAME from a --config file: the same parsing and validation as the sidecar's. */
async function originFromFile(
  file: string,
  name: string,
  namespace: string | undefined,
): Promise<OriginManifest> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new InvalidConfigError(`${file}: cannot read: ${err.message}`);
  });
  const { origins, errors } = parseOrigins(text, file);
  if (errors.length > 0) throw new InvalidConfigError(`${file} is invalid`, errors);
  const matches = origins.filter(
    (o) => o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (matches.length > 1) {
    throw new UsageError(
      `Origin ${name} is declared in several namespaces of ${file}: give -n (${matches.map((o) => o.metadata.namespace).join(', ')})`,
    );
  }
  const found = matches[0];
  if (found === undefined) {
    const declared =
      origins.map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`).join(', ') || 'none';
    throw new InvalidConfigError(
      `${file} declares no Origin ${namespace === undefined ? '' : `${namespace}/`}${name} (declared: ${declared})`,
    );
  }
  return found;
}

const inCluster = () => (process.env.KUBERNETES_SERVICE_HOST ?? '') !== '';

/** The plan and vantage for origin/NAME: from the file, or from the cluster with its sidecars' reports. */
async function originPlan(
  input: string,
  name: string,
  flags: Flags,
  pf: PlanFlags,
): Promise<{ plan: Plan; vantage: Vantage }> {
  if (flags.config !== undefined) {
    const manifest = await originFromFile(flags.config, name, flags.namespace);
    return {
      plan: planForOrigin(input, manifest, pf, readIfPresent),
      vantage: { inCluster: inCluster(), fromCluster: false, sidecars: null, notes: [] },
    };
  }
  // Loaded only for an Origin in a cluster: the kubeconfig client costs tens of MB and 100s of ms.
  const { getOrigin, listReports, openCluster } = await import('./cluster.ts');
  const session = await openCluster({
    kubeconfig: flags.kubeconfig,
    context: flags.context,
    namespace: flags.namespace,
  });
  try {
    const origin = await getOrigin(session, session.namespace, name);
    const valid = validateOriginObject(origin);
    if (!valid.ok)
      throw new InvalidConfigError(`Origin ${session.namespace}/${name} is invalid`, valid.errors);
    const notes: string[] = [];
    const reports = await listReports(session, session.namespace, name).catch((err: Error) => {
      notes.push(
        `the sidecars' OriginReports could not be read (${err.message}); only Origin.status is used`,
      );
      return [];
    });
    // From outside the cluster, a caFile path is the sidecar's, not this machine's.
    const readCa = inCluster() ? readIfPresent : () => undefined;
    return {
      plan: planForOrigin(input, valid.value, pf, readCa),
      vantage: { inCluster: inCluster(), fromCluster: true, sidecars: sidecarView(origin, reports), notes },
    };
  } finally {
    await session.client.close();
  }
}

async function planOf(
  target: ParsedTarget,
  input: string,
  flags: Flags,
): Promise<{ plan: Plan; vantage: Vantage }> {
  const pf = await planFlags(flags);
  if (target.kind === 'origin') return originPlan(input, target.name, flags, pf);
  if (flags.config !== undefined || flags.namespace !== undefined)
    throw new UsageError('--config and -n apply to origin/NAME targets');
  return {
    plan: planForAddress(input, target, pf),
    vantage: { inCluster: inCluster(), fromCluster: false, sidecars: null, notes: [] },
  };
}

const PHASE_WORDS = {
  dns: 'resolving',
  tcp: 'connecting to',
  tls: 'TLS handshake with',
  http: 'waiting for the answer to',
} as const;

async function runText(plan: Plan, vantage: Vantage): Promise<number> {
  const style = styleFor(process.stdout);
  const progress = new Progress();
  const out = (lines: readonly string[]) => {
    progress.clear();
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  };
  out(renderHeader(plan, vantage.inCluster, style));
  const printer = new StepPrinter(plan, style);
  const d = await diagnose(plan, {
    vantage,
    events: {
      onPhase: (phase, _target, what) => progress.set(`${PHASE_WORDS[phase]} ${what}`),
      onStep: (step) => out(printer.lines(step)),
    },
  });
  progress.stop();
  out(renderVerdict(d, style));
  return exitCodeOf(d);
}

/** Runs the command; resolves with the exit code. */
export async function runDiagnoseCommand(argv: string[], prog = 'originguard'): Promise<number> {
  let flags: Flags;
  let positionals: string[];
  try {
    ({ values: flags, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true }));
  } catch (err) {
    process.stderr.write(`${prog} diagnose: ${(err as Error).message}\n\n${help(prog)}`);
    return EXIT.usage;
  }
  if (flags.help === true) {
    process.stdout.write(help(prog));
    return 0;
  }
  try {
    if (positionals.length !== 1)
      throw new UsageError(
        positionals.length === 0
          ? 'give one TARGET'
          : `give one TARGET, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    if (!['text', 'json', 'yaml'].includes(flags.output))
      throw new UsageError(`-o: must be text, json or yaml, got "${flags.output}"`);
    const input = positionals[0] as string;
    if (flags['from-operator'] === true) return await fromOperator(parseTarget(input), flags);
    if (flags.wait !== undefined) throw new UsageError('--wait applies to --from-operator');
    const { plan, vantage } = await planOf(parseTarget(input), input, flags);
    if (flags.output === 'text') return await runText(plan, vantage);
    const d = await diagnose(plan, { vantage });
    process.stdout.write(flags.output === 'json' ? `${JSON.stringify(d, null, 2)}\n` : stringify(d));
    return exitCodeOf(d);
  } catch (err) {
    return failed(err, prog);
  }
}

const CHECKLIST_FLAGS = [
  'config',
  'dns-server',
  'tls',
  'ca-file',
  'server-name',
  'insecure',
  'connect-timeout',
  'response-timeout',
  'path',
  'host-header',
] as const;

/** --from-operator: the operator runs the checklist, this machine only asks and shows. */
async function fromOperator(target: ParsedTarget, flags: Flags): Promise<number> {
  if (target.kind !== 'origin')
    throw new UsageError('--from-operator diagnoses origin/NAME from the cluster');
  const local = CHECKLIST_FLAGS.filter((f) => flags[f] !== undefined);
  if (local.length > 0)
    throw new UsageError(
      `--from-operator runs the Origin as declared: drop ${local.map((f) => `--${f}`).join(', ')}`,
    );
  const timeoutMs = flags.wait === undefined ? 120_000 : durationMs('wait', flags.wait);
  const { askOperator, exitCodeOfAnswer, renderOperatorAnswer } = await import('./from-operator.ts');
  const { openCluster } = await import('./cluster.ts');
  const session = await openCluster({
    kubeconfig: flags.kubeconfig,
    context: flags.context,
    namespace: flags.namespace,
  });
  try {
    const text = flags.output === 'text';
    const progress = text ? new Progress() : undefined;
    const answer = await askOperator(session, target.name, timeoutMs, (line) => progress?.set(line));
    progress?.stop();
    if (text)
      process.stdout.write(
        `${renderOperatorAnswer(answer, Date.now(), styleFor(process.stdout)).join('\n')}\n`,
      );
    else
      process.stdout.write(
        flags.output === 'json' ? `${JSON.stringify(answer, null, 2)}\n` : stringify(answer),
      );
    return exitCodeOfAnswer(answer);
  } finally {
    await session.client.close();
  }
}

/** The tool's own problems: a message on stderr and the sysexits code of its kind. */
function failed(err: unknown, prog: string): number {
  const name = `${prog} diagnose`;
  if (err instanceof UsageError) {
    process.stderr.write(`${name}: ${err.message}\nRun '${prog} diagnose --help' for usage.\n`);
    return EXIT.usage;
  }
  if (err instanceof InvalidConfigError) {
    process.stderr.write(`${name}: ${err.message}\n${err.problems.map((p) => `  ${p}\n`).join('')}`);
    return EXIT.invalidConfig;
  }
  if (err instanceof OriginUnavailableError) {
    process.stderr.write(`${name}: ${err.message}\n`);
    return EXIT.clusterUnavailable;
  }
  throw err;
}
