// Acts as the kubelet for one container of a pod, so tests and the playground
// run the injected sidecar exactly as the API server returned it, with no node:
// its projected volumes written to a temp dir (a real pod-bound token from the
// TokenRequest API, kube-root-ca.crt, downward-API files), its env resolved from
// the pod, KUBERNETES_SERVICE_HOST/PORT set, and its command run as a process.
//
// Where a process cannot be a container, it remaps: the kubelet bind-mounts each
// volume at its mountPath; a process sees the host's file system, so each mount
// path prefix in the env is rewritten to the volume's temp dir instead (args are
// passed unchanged). The container's network namespace is the host's here, so an
// admin port can be moved (`adminPort`) and binds default to loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../src/kube/client.ts';
import { loadKubeConfig } from '../src/kube/kubeconfig.ts';
import { collectJsonLines, waitForReadyz } from './child-output.ts';
import { fieldValue, type MaterializedVolumes, materializeVolumes, type PodLike } from './pod-volumes.ts';

export { formatMap, goQuote, type PodLike } from './pod-volumes.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    resourceFieldRef?: unknown;
  };
}
export interface ContainerSpec {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: unknown[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
/** A pod as the API server returns it (after admission, so with what the webhook injected). */
export interface Pod extends PodLike {
  spec: PodLike['spec'] & { containers: ContainerSpec[]; initContainers?: ContainerSpec[] };
}

export interface PodRunnerOptions {
  /** How the "kubelet" reaches the API server: an admin client, or an admin kubeconfig. */
  kube: KubeClient | { kubeconfig: string };
  /** Added after the container's env: stand-ins for what a pod has and a process lacks (e.g. ORIGINGUARD_DNS_SERVER for its resolv.conf). */
  env?: Record<string, string>;
  /** Replaces the value of `--admin-port` in the args: every "pod" here shares the host's ports. */
  adminPort?: number;
  /** Program run for a container command; default: `originguard` → this checkout's CLI on this Node. */
  commands?: Record<string, string[]>;
  /** Each JSON log line the container writes on stdout. */
  onLog?: (line: Record<string, unknown>) => void;
  /**
   * Run the process as this user and group, as the kubelet runs a container with
   * securityContext.runAsUser/runAsGroup (needs root). The volumes stay readable
   * to it, as the kubelet's are.
   */
  runAs?: { uid: number; gid: number };
}

export interface PodContainer {
  readonly child: ChildProcess;
  /** Temp dir holding the volumes; removed by stop(). */
  readonly dir: string;
  /** The environment and command line the process got. */
  readonly env: Readonly<Record<string, string>>;
  readonly argv: readonly string[];
  /** Admin port from the args (or ORIGINGUARD_ADMIN_PORT, default 9901). */
  readonly adminPort: number;
  /** JSON log lines, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  /** Polls http://127.0.0.1:<adminPort>/readyz until 200; fails at once, with the log tail, if the process exits. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Rewrites the downward-API files from the pod as it is now (labels changed). */
  refreshDownwardApi(): Promise<void>;
  /** Signals the process (SIGKILL after the pod's grace period, default 30 s), waits, removes `dir`; once. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Recent output, for failure messages. */
  tail(lines?: number): string;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Starts `containerName` of `pod` as a local process. */
export async function runPodContainer(
  pod: Pod,
  containerName: string,
  opts: PodRunnerOptions,
): Promise<PodContainer> {
  const container = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
    (c) => c.name === containerName,
  );
  if (container === undefined) {
    throw new Error(`pod ${pod.metadata.namespace}/${pod.metadata.name} has no container ${containerName}`);
  }
  if ((container.envFrom ?? []).length > 0) throw new Error(`${containerName}: envFrom is not supported`);
  const ownClient = !(opts.kube instanceof KubeClient);
  const client =
    opts.kube instanceof KubeClient ? opts.kube : new KubeClient(await loadKubeConfig(opts.kube));
  const release = async () => {
    if (ownClient) await client.close();
  };
  const dir = await mkdtemp(join(tmpdir(), `originguard-pod-${pod.metadata.name}-`));
  // mkdtemp makes it 0700: another user (runAs) could not reach the volumes inside.
  if (opts.runAs !== undefined) await chmod(dir, 0o755);
  let volumes: MaterializedVolumes | undefined;
  try {
    const mounts = container.volumeMounts ?? [];
    volumes = await materializeVolumes(
      pod,
      mounts.map((m) => m.name),
      client,
      dir,
    );
    const dirs = volumes.dirs;
    const remap = mounts
      .map((m) => ({
        from: m.mountPath.replace(/\/$/, ''),
        to: join(dirs.get(m.name) ?? dir, m.subPath ?? ''),
      }))
      .sort((a, b) => b.from.length - a.from.length);
    const env = {
      ...(await containerEnv(pod, container, client, remap)),
      // The pod has its own network namespace; here binds default to loopback only.
      ORIGINGUARD_ADMIN_ADDRESS: '127.0.0.1',
      ...opts.env,
    };
    const argv = commandLine(container, opts, env);
    return start({ pod, argv, env, dir, volumes, client, release }, opts);
  } catch (err) {
    volumes?.close();
    rmSync(dir, { recursive: true, force: true });
    await release();
    throw err;
  }
}

/** The container's env as the kubelet builds it: service env first, then `env` in order with $(VAR) expansion. */
async function containerEnv(
  pod: Pod,
  container: ContainerSpec,
  client: KubeClient,
  remap: { from: string; to: string }[],
): Promise<Record<string, string>> {
  const api = new URL(client.server);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOSTNAME: pod.metadata.name,
    // What the kubelet sets from the `kubernetes` Service; here the API server itself.
    KUBERNETES_SERVICE_HOST: api.hostname.replace(/^\[|\]$/g, ''),
    KUBERNETES_SERVICE_PORT: api.port || '443',
  };
  for (const v of container.env ?? []) {
    const value = v.valueFrom === undefined ? expand(v.value ?? '', env) : await valueFrom(pod, v, client);
    if (value === undefined) continue;
    // The kubelet mounts at mountPath; a path under it lives in the volume's temp dir here.
    const mount = remap.find((m) => value === m.from || value.startsWith(`${m.from}/`));
    env[v.name] = mount === undefined ? value : mount.to + value.slice(mount.from.length);
  }
  return env;
}

async function valueFrom(pod: Pod, v: EnvVar, client: KubeClient): Promise<string | undefined> {
  const from = v.valueFrom ?? {};
  if (from.fieldRef !== undefined) return fieldValue(pod, from.fieldRef.fieldPath);
  const ref = from.configMapKeyRef ?? from.secretKeyRef;
  if (ref === undefined)
    throw new Error(`env ${v.name}: only fieldRef, configMapKeyRef and secretKeyRef are supported`);
  const plural = from.configMapKeyRef === undefined ? 'secrets' : 'configmaps';
  const object = await client.get<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${pod.metadata.namespace}/${plural}/${encodeURIComponent(ref.name)}`,
  );
  const raw = object?.data?.[ref.key];
  if (raw === undefined) {
    if (ref.optional === true) return undefined;
    throw new Error(`env ${v.name}: ${plural} ${ref.name} has no key ${ref.key}`);
  }
  return plural === 'secrets' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
}

/** Kubernetes' $(VAR) expansion: defined variables are replaced, `$$` escapes, anything else stays. */
export function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) =>
    name === undefined ? '$' : (env[name] ?? match),
  );
}

/** command + args ($(VAR) expanded, as the kubelet does), the command mapped to a local program, `--admin-port` moved if asked. */
function commandLine(
  container: ContainerSpec,
  opts: PodRunnerOptions,
  env: Record<string, string>,
): string[] {
  const [command, ...rest] = container.command ?? [];
  if (command === undefined)
    throw new Error(`${container.name}: no command (an image entrypoint cannot run here)`);
  const commands: Record<string, string[]> = { originguard: [process.execPath, CLI], ...opts.commands };
  const program = commands[command];
  if (program === undefined) throw new Error(`${container.name}: no local program for command ${command}`);
  let args = [...rest, ...(container.args ?? [])].map((a) => expand(a, env));
  if (opts.adminPort !== undefined) {
    const port = String(opts.adminPort);
    args = args.map((a, i) =>
      a.startsWith('--admin-port=') ? `--admin-port=${port}` : args[i - 1] === '--admin-port' ? port : a,
    );
  }
  return [...program, ...args];
}

function adminPortOf(argv: readonly string[], env: Record<string, string>): number {
  const i = argv.findIndex((a) => a === '--admin-port' || a.startsWith('--admin-port='));
  const value =
    i < 0 ? env.ORIGINGUARD_ADMIN_PORT : argv[i]?.includes('=') ? argv[i]?.split('=')[1] : argv[i + 1];
  return Number(value ?? 9901);
}

interface Prepared {
  pod: Pod;
  argv: string[];
  env: Record<string, string>;
  dir: string;
  volumes: MaterializedVolumes;
  client: KubeClient;
  /** Closes the client if the runner made it. */
  release: () => Promise<void>;
}

function start(prepared: Prepared, opts: PodRunnerOptions): PodContainer {
  const { pod, argv, env, dir, volumes, client } = prepared;
  const [program = '', ...args] = argv;
  const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...opts.runAs });
  running.add(child);
  const logs: Record<string, unknown>[] = [];
  const raw: string[] = [];
  collectJsonLines(child.stdout, { logs, raw }, opts.onLog);
  child.stderr?.on('data', (d: Buffer) => raw.push(...d.toString().split('\n')));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      volumes.close();
      resolve(code ?? (signal === null ? null : 128));
    }),
  );
  const tail = (n = 40) => raw.slice(-n).join('\n');
  const adminPort = adminPortOf(argv, env);
  let stopped: Promise<number | null> | undefined;
  return {
    child,
    dir,
    env,
    argv,
    adminPort,
    logs,
    exited,
    tail,
    waitReady: (timeoutMs = 30_000) => waitForReadyz(pod.metadata.name, child, adminPort, tail, timeoutMs),
    async refreshDownwardApi() {
      const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${encodeURIComponent(pod.metadata.name)}`;
      const now = await client.get<Pod>(path);
      if (now !== undefined) await volumes.refreshDownwardApi(now);
    },
    stop(signal = 'SIGTERM') {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill(signal);
          const graceMs = (pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
        await prepared.release();
        return exited;
      })();
      return stopped;
    },
  };
}
