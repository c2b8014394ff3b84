// `originguard status [origin/NAME] [-n NS | -A]` (kubectl originguard status):
// a readable view of Origins and their pods' reports: reachable or not, the
// cause, which pods fail with which cause since when, the hint. Read-only: get
// and list on origins and originreports.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { OriginReport } from '../api/report.ts';
import { UsageError } from '../errors.ts';
import { type ClusterSession, getOrigin, listOrigins, listReports, openCluster } from './cluster.ts';
import { EXIT } from './diagnosis.ts';
import { OriginUnavailableError } from './errors.ts';
import { parseTarget } from './plan.ts';
import { DIAGNOSIS_API_VERSION } from './schema.ts';
import { type OriginObject, podsOf, renderOriginStatus } from './status-view.ts';
import { styleFor } from './terminal.ts';

const help = (prog: string) => `Usage: ${prog} status [origin/NAME] [options]

Shows each Origin's status as the operator aggregates it and its pods' own
reports: reachable or not, the cause, which pods fail with which cause and since
when, the last failure and the hint.

Options:
  -n, --namespace <ns>     Namespace (default: the context's, else default)
  -A, --all-namespaces     Every namespace
      --context <name>     kubeconfig context to use
      --kubeconfig <file>  kubeconfig (default: KUBECONFIG, then ~/.kube/config)
  -o, --output <format>    text (default), json or yaml
  -h, --help               Show this help

Exit codes: 0 shown; 64 bad usage; 69 the cluster cannot be read (or the Origin is not there).
`;

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  context: { type: 'string' },
  kubeconfig: { type: 'string' },
  output: { type: 'string', short: 'o', default: 'text' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Entry {
  readonly origin: OriginObject;
  readonly reports: OriginReport[];
}

async function entries(session: ClusterSession, name: string | undefined, all: boolean): Promise<Entry[]> {
  if (name !== undefined) {
    const origin = await getOrigin(session, session.namespace, name);
    return [{ origin, reports: await listReports(session, session.namespace, name) }];
  }
  const namespace = all ? undefined : session.namespace;
  const [origins, reports] = await Promise.all([
    listOrigins(session, namespace),
    listReports(session, namespace),
  ]);
  return origins
    .sort((a, b) =>
      `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace}/${b.metadata.name}`,
      ),
    )
    .map((origin) => ({
      origin,
      reports: reports.filter(
        (r) =>
          r.metadata.namespace === origin.metadata.namespace && r.status.originName === origin.metadata.name,
      ),
    }));
}

function structured(list: readonly Entry[]) {
  return {
    apiVersion: DIAGNOSIS_API_VERSION,
    kind: 'OriginStatusList',
    items: list.map(({ origin, reports }) => ({
      namespace: origin.metadata.namespace ?? 'default',
      name: origin.metadata.name,
      upstream: { host: origin.spec.upstream.host, port: origin.spec.upstream.port },
      status: origin.status ?? {},
      pods: podsOf(reports),
    })),
  };
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** The Origin asked for (if one) and whether every namespace is; throws UsageError. */
function checkArgs(
  values: Values,
  positionals: readonly string[],
): { name: string | undefined; all: boolean } {
  if (positionals.length > 1)
    throw new UsageError(`give at most one origin/NAME, got ${positionals.join(' ')}`);
  if (!['text', 'json', 'yaml'].includes(values.output))
    throw new UsageError(`-o: must be text, json or yaml, got "${values.output}"`);
  const target = positionals[0] === undefined ? undefined : parseTarget(positionals[0]);
  if (target !== undefined && target.kind !== 'origin')
    throw new UsageError(`expected origin/NAME, got "${positionals[0]}"`);
  const all = values['all-namespaces'] === true;
  if (all && (values.namespace !== undefined || target !== undefined))
    throw new UsageError('-A lists every Origin: give neither -n nor origin/NAME with it');
  return { name: target?.kind === 'origin' ? target.name : undefined, all };
}

export async function runStatusCommand(argv: string[], prog = 'originguard'): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true }));
  } catch (err) {
    process.stderr.write(`${prog} status: ${(err as Error).message}\n\n${help(prog)}`);
    return EXIT.usage;
  }
  if (values.help === true) {
    process.stdout.write(help(prog));
    return 0;
  }
  let session: ClusterSession | undefined;
  try {
    const { name, all } = checkArgs(values, positionals);
    session = await openCluster({
      kubeconfig: values.kubeconfig,
      context: values.context,
      namespace: values.namespace,
    });
    const list = await entries(session, name, all);
    if (values.output !== 'text') {
      const doc = structured(list);
      process.stdout.write(values.output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc));
      return 0;
    }
    if (list.length === 0) {
      process.stderr.write(`No Origins found${all ? '' : ` in namespace ${session.namespace}`}.\n`);
      return 0;
    }
    const style = styleFor(process.stdout);
    const blocks = list.map(({ origin, reports }) =>
      renderOriginStatus(origin, reports, Date.now(), style).join('\n'),
    );
    process.stdout.write(`${blocks.join('\n\n')}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${prog} status: ${err.message}\nRun '${prog} status --help' for usage.\n`);
      return EXIT.usage;
    }
    if (err instanceof OriginUnavailableError) {
      process.stderr.write(`${prog} status: ${err.message}\n`);
      return EXIT.clusterUnavailable;
    }
    throw err;
  } finally {
    await session?.client.close();
  }
}
