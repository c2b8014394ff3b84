// What the Helm chart gives the operator container by default, read from
// `helm template` so the benchmark runs the operator exactly as installed: its
// memory limit and the NODE_OPTIONS (V8 heap size) the chart sets from it.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const CHART = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'charts', 'originguard');

export interface ChartOperatorSettings {
  memoryLimit: string | undefined;
  memoryRequest: string | undefined;
  nodeOptions: string | undefined;
}

interface Container {
  name: string;
  env?: { name: string; value?: string }[];
  resources?: { limits?: { memory?: string }; requests?: { memory?: string } };
}

export async function chartOperatorSettings(helm: string): Promise<ChartOperatorSettings> {
  const text = await new Promise<string>((resolve, reject) =>
    execFile(
      helm,
      ['template', 'originguard', CHART, '--namespace', 'originguard-system'],
      (err, out, stderr) =>
        err ? reject(new Error(`helm template: ${stderr || err.message}`)) : resolve(out),
    ),
  );
  const deployment = parseAllDocuments(text)
    .map((d) => d.toJS() as { kind?: string; spec?: { template: { spec: { containers: Container[] } } } })
    .find((o) => o?.kind === 'Deployment');
  const container = deployment?.spec?.template.spec.containers.find((c) => c.name === 'operator');
  if (container === undefined) throw new Error('helm template: no operator container in the Deployment');
  return {
    memoryLimit: container.resources?.limits?.memory,
    memoryRequest: container.resources?.requests?.memory,
    nodeOptions: container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value,
  };
}
