// `npm run playground`: the whole system on this machine, no cluster needed. A
// local control plane, crds/ and deploy/, the operator as a process (the API
// server calls its webhook on loopback), a demo namespace with a demo origin
// server, an Origin, and a pod created through the API (so it comes back
// injected) whose sidecar runs as the kubelet would run it (pod-runner.ts).
// Progress goes to stderr; what to try goes to stdout, after a line starting
// "originguard playground ready". Ctrl-C stops everything and cleans up.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { SIDECAR_CONTAINER } from '../src/api/contract.ts';
import { type ControlPlane, findBinaries, startControlPlane } from './control-plane.ts';
import { ensureNamespace, installLocally, kubectlFor, type LocalInstall } from './local-install.ts';
import { freePort } from './net.ts';
import { type Pod, type PodContainer, runPodContainer } from './pod-runner.ts';

const NS = 'demo';
const say = (message: string): void => console.error(`[playground] ${message}`);
const script = new URL('test-binaries.sh', import.meta.url).pathname;

/** A small HTTP server on loopback that the demo Origin points at; stopped and started on demand. */
class DemoOrigin {
  private server: Server | undefined;
  private served = 0;
  readonly port: number;
  constructor(port: number) {
    this.port = port;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer((req, res) => {
      this.served++;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`hello from the demo origin: ${req.method} ${req.url} (request ${this.served})\n`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

/** `POST /origin/stop` and `POST /origin/start` on loopback, for scripts (and the test). */
async function controlServer(origin: DemoOrigin): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const action = /^\/origin\/(start|stop)$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'POST' || action === undefined) {
      res.writeHead(404).end('POST /origin/stop or /origin/start\n');
      return;
    }
    toggle(origin, action as 'start' | 'stop').then(
      () => res.end(`demo origin ${origin.running ? 'running' : 'stopped'}\n`),
      (err: unknown) => res.writeHead(500).end(`${(err as Error).message}\n`),
    );
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function toggle(origin: DemoOrigin, action: 'start' | 'stop'): Promise<void> {
  await (action === 'start' ? origin.start() : origin.stop());
  say(`demo origin ${action === 'start' ? `listening on 127.0.0.1:${origin.port}` : 'stopped'}`);
}

function originYaml(listenPort: number, originPort: number): string {
  return `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: shop-edge}}
  listen: {port: ${listenPort}, address: 127.0.0.1}
  upstream: {host: 127.0.0.1, port: ${originPort}}
  timeouts: {connect: 1s}
  errorResponse: {showDetails: true}   # a demo: show the details and the hint to curl
`;
}

const POD_YAML = `apiVersion: v1
kind: Pod
metadata: {name: shop-edge-0, namespace: ${NS}, labels: {app: shop-edge}}
spec:
  containers: [{name: shop, image: registry.example/shop:1}]
`;

/** One line per classified failure (and per error) the sidecar logs, so causes show here as they happen. */
function printSidecarLog(line: Record<string, unknown>): void {
  if (line.cause !== undefined) {
    const where = [line.method, line.path].filter((v) => v !== undefined).join(' ');
    say(`sidecar answered ${line.status} ${line.cause} to ${where} (request id ${line.requestId})`);
  } else if (typeof line.level === 'number' && line.level >= 50) {
    say(`sidecar error: ${line.msg}`);
  }
}

const onPath = (bin: string) =>
  (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, bin)));

/** Commands with their comments aligned in one column. */
const block = (rows: [string, string][]): string => {
  const width = Math.max(...rows.map(([cmd]) => cmd.length));
  return rows.map(([cmd, note]) => `  ${note === '' ? cmd : `${cmd.padEnd(width)}   # ${note}`}`).join('\n');
};

function instructions(o: {
  cp: ControlPlane;
  listen: number;
  control: number;
  admin: number;
  origin: number;
}) {
  const proxy = `curl -i http://127.0.0.1:${o.listen}/`;
  const control = `curl -X POST http://127.0.0.1:${o.control}/origin`;
  const setup: [string, string][] = [[`export KUBECONFIG=${o.cp.kubeconfig}`, '']];
  if (!onPath('kubectl')) setup.push([`alias kubectl=${o.cp.binaries.kubectl}`, '']);
  return `
In another terminal:

${block(setup)}

${block([
  [proxy, `through the sidecar to the demo origin (127.0.0.1:${o.origin})`],
  [`kubectl get origins -n ${NS}`, 'REACHABLE, CAUSE, PODS'],
  [`kubectl get origins -n ${NS} -o wide -w`, 'plus the hint; -w watches'],
])}

Stop the demo origin and watch the cause appear:

${block([
  [`${control}/stop`, 'or type "stop" here'],
  [proxy, '531, Proxy-Status: error=connection_refused'],
  [`kubectl get events -n ${NS}`, 'OriginUnreachable'],
  [`${control}/start`, 'or type "start" here'],
])}

Edit the Origin live (upstream.port: 1, timeouts.connect: 300ms, upstream.host: ...):

${block([
  [`kubectl edit origin shop -n ${NS}`, ''],
  [`curl http://127.0.0.1:${o.admin}/status`, "the sidecar's own view; /metrics too"],
])}

Ctrl-C stops everything.
`;
}

async function binariesCached(): Promise<boolean> {
  if (process.env.KUBEBUILDER_ASSETS || process.env.TEST_ASSET_KUBE_APISERVER) return true;
  return new Promise((resolve) => execFile('bash', [script, '--check'], (error) => resolve(error === null)));
}

interface Running {
  cp?: ControlPlane;
  install?: LocalInstall;
  origin?: DemoOrigin;
  control?: { close(): Promise<void> };
  sidecar?: PodContainer;
}

async function start(running: Running): Promise<void> {
  const t0 = Date.now();
  if (!(await binariesCached())) {
    say(
      'first run: building the control-plane binaries (kube-apiserver, kube-controller-manager, etcd, kubectl)',
    );
    say('from their Go modules into ~/.cache/originguard/bin. This takes about 12 minutes, once;');
    say('every later run starts in seconds.');
  }
  const binaries = await findBinaries(say);
  const cp = await startControlPlane({ binaries });
  running.cp = cp;
  say(`control plane ready (${cp.server})`);
  running.install = await installLocally(cp, { tokenDuration: '720h' });
  say('CRDs, deploy/ and the operator installed; the operator runs as a process');

  await ensureNamespace(cp, NS);
  const origin = new DemoOrigin(await freePort());
  running.origin = origin;
  await origin.start();
  const control = await controlServer(origin);
  running.control = control;
  const listen = await freePort();
  const kubectl = kubectlFor(cp);
  await kubectl(['apply', '-f', '-'], originYaml(listen, origin.port));
  await kubectl(['create', '-f', '-'], POD_YAML);
  const pod = JSON.parse(await kubectl(['get', 'pod', 'shop-edge-0', '-n', NS, '-o', 'json'])) as Pod;
  if (pod.spec.initContainers?.[0]?.name !== SIDECAR_CONTAINER) {
    throw new Error(`the pod came back without the sidecar:\n${running.install.operator.tail()}`);
  }
  say(`pod ${NS}/shop-edge-0 created and injected; running its sidecar`);
  const admin = await freePort();
  running.sidecar = await runPodContainer(pod, SIDECAR_CONTAINER, {
    kube: { kubeconfig: cp.kubeconfig },
    adminPort: admin,
    onLog: printSidecarLog,
  });
  await running.sidecar.waitReady(30_000);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  process.stdout.write(`originguard playground ready in ${seconds} s\n`);
  process.stdout.write(instructions({ cp, listen, control: control.port, admin, origin: origin.port }));
}

async function stopAll(running: Running): Promise<void> {
  await running.sidecar?.stop().catch((err: unknown) => say(`sidecar: ${(err as Error).message}`));
  await running.install?.stop().catch((err: unknown) => say(`operator: ${(err as Error).message}`));
  await running.origin?.stop();
  await running.control?.close();
  await running.cp?.stop();
}

function main(): void {
  const running: Running = {};
  let stopping = false;
  const shutdown = (why: string, code: number): void => {
    if (stopping) {
      say('stopping already; exiting now (the control plane is killed on exit)');
      process.exit(1);
    }
    stopping = true;
    say(`${why}: stopping the sidecar, the operator, the demo origin and the control plane`);
    stopAll(running).then(
      () => {
        say('stopped, temporary files removed');
        process.exit(code);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => shutdown(signal, 0));
  // Typed commands, for a terminal: "stop" and "start" the demo origin.
  createInterface({ input: process.stdin }).on('line', (line) => {
    const action = line.trim();
    if (running.origin === undefined || (action !== 'stop' && action !== 'start')) return;
    toggle(running.origin, action).catch((err: unknown) => say((err as Error).message));
  });
  start(running).catch((err: unknown) => {
    console.error(`[playground] ${err instanceof Error ? err.message : String(err)}`);
    shutdown('failed', 1);
  });
}

main();
