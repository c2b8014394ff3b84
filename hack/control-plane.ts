// A real Kubernetes control plane for tests and `npm run cluster`: etcd,
// kube-apiserver and kube-controller-manager on free loopback ports, an admin
// kubeconfig, and a clean shutdown that leaves no process or file behind, even
// when the parent dies without calling stop().
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './net.ts';
import {
  ControlPlaneError,
  type ProcessInfo,
  rssBytes,
  type Started,
  spawnLogged,
  startWatchdog,
  stopAll,
  waitUntil,
} from './supervisor.ts';
import { type Binaries, findBinaries } from './test-binaries.ts';

export { ControlPlaneError, type ProcessInfo } from './supervisor.ts';
export { type Binaries, findBinaries } from './test-binaries.ts';

export interface ControlPlaneOptions {
  /** Binaries to run; default: findBinaries(). */
  binaries?: Binaries;
  /** Give up starting after this many ms (default 90 s: a loaded 2-core machine is slow). */
  startTimeoutMs?: number;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
  /** More kube-apiserver flags (a benchmark raising --max-requests-inflight, say); later flags win. */
  apiServerArgs?: readonly string[];
}

export interface ControlPlane {
  /** Path of a kubeconfig for an admin user (group system:masters). */
  kubeconfig: string;
  /** https URL of kube-apiserver on 127.0.0.1. */
  server: string;
  /** CA bundle that verifies the apiserver's serving certificate. */
  caFile: string;
  /** Bearer token of the admin user. */
  adminToken: string;
  /** Service-account token issuer (the `iss` of tokens the TokenRequest API issues). */
  issuer: string;
  /** Whether kube-controller-manager runs (GC, default ServiceAccounts, Deployments, namespace deletion). */
  controllerManager: boolean;
  binaries: Binaries;
  /** Directory that holds kube-apiserver. */
  binDir: string;
  /** Temporary directory with the data, keys, kubeconfig and logs; removed by stop(). */
  dir: string;
  processes: ProcessInfo[];
  /**
   * kube-apiserver alone, for tests of an API server outage: stop() terminates
   * it (etcd and kube-controller-manager keep running); start() runs it again
   * with the same port, arguments, certificates and etcd data, and resolves once
   * /readyz answers 200.
   */
  apiServer: ApiServerControl;
  /** Resident memory of each process, in bytes (read from /proc). */
  rss(): Record<string, number>;
  /** Stops every process and removes `dir` (kept, for its logs, if ORIGINGUARD_CP_KEEP=1). Safe to call more than once. */
  stop(): Promise<void>;
}

export interface ApiServerControl {
  /** Terminates kube-apiserver (SIGTERM, SIGKILL after 2 s) and waits until it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves when /readyz answers 200 (default timeout 60 s). */
  start(timeoutMs?: number): Promise<void>;
  /** Whether it runs (started and not stopped). */
  readonly running: boolean;
}

/** Starts a control plane and waits until it is ready to serve a test. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? (() => {});
  const binaries = options.binaries ?? (await findBinaries(log));
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binaries, deadline, log, options.apiServerArgs ?? []);
    } catch (error) {
      // Free ports are picked before the processes bind them; another process
      // can take one in between. Start again on fresh ports.
      const portTaken = error instanceof ControlPlaneError && /address already in use/.test(error.message);
      if (!portTaken || attempt >= 3 || Date.now() > deadline) throw error;
      log(`a port was taken meanwhile; starting again (attempt ${attempt + 1})`);
    }
  }
}

async function startOnce(
  binaries: Binaries,
  deadline: number,
  log: (message: string) => void,
  extraApiServerArgs: readonly string[],
): Promise<ControlPlane> {
  const dir = await mkdtemp(join(tmpdir(), 'originguard-cp-'));
  const started: Started[] = [];
  const watchdog = startWatchdog(dir);
  const keep = process.env.ORIGINGUARD_CP_KEEP === '1';
  const stop = once(async () => {
    await stopAll(started);
    watchdog.release();
    if (keep) log(`kept ${dir} (ORIGINGUARD_CP_KEEP=1): logs in ${join(dir, 'logs')}`);
    else rmSync(dir, { recursive: true, force: true });
  });
  // Covers a parent that exits without calling stop() (process.exit, uncaught error).
  const onExit = (): void => {
    for (const s of started) s.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const stopAndForget = async (): Promise<void> => {
    process.removeListener('exit', onExit);
    await stop();
  };

  try {
    const t0 = Date.now();
    const [etcdClient, etcdPeer, apiPort, kcmPort] = (await freePorts(4)) as [number, number, number, number];
    const logs = join(dir, 'logs');
    const pki = join(dir, 'pki');
    await mkdir(logs);
    await mkdir(pki, { mode: 0o700 });

    // etcd
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = spawnLogged('etcd', binaries.etcd, etcdArgs(dir, etcdUrl, etcdPeer), logs, watchdog);
    started.push(etcd);
    await waitUntil(deadline, etcd, 'etcd answering /health', async () => {
      const res = await fetch(`${etcdUrl}/health`).catch(() => undefined);
      return res?.ok === true;
    });
    log(`etcd ready on ${etcdUrl} (${Date.now() - t0} ms)`);

    // kube-apiserver
    const adminToken = randomBytes(24).toString('hex');
    const server = `https://127.0.0.1:${apiPort}`;
    const issuer = server;
    await writeCredentials(pki, adminToken);
    const apiArgs = [...apiserverArgs({ pki, etcdUrl, apiPort, issuer }), ...extraApiServerArgs];
    const apiserver = spawnLogged('kube-apiserver', binaries.kubeApiserver, apiArgs, logs, watchdog);
    started.push(apiserver);
    const caFile = join(pki, 'apiserver.crt');
    await waitUntil(deadline, apiserver, 'kube-apiserver writing its serving certificate', async () =>
      existsSync(caFile),
    );
    // The certificate file may be caught half-written: read it afresh on each try.
    await waitUntil(deadline, apiserver, 'kube-apiserver answering /readyz', async () => {
      return (await apiClient(server, await readFile(caFile), adminToken)('/readyz')) === 200;
    });
    const api = apiClient(server, await readFile(caFile), adminToken);
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(server, caFile, adminToken), { mode: 0o600 });
    log(`kube-apiserver ready on ${server} (${Date.now() - t0} ms)`);

    // kube-controller-manager
    let kcm: Started | undefined;
    if (binaries.kubeControllerManager !== undefined) {
      kcm = spawnLogged(
        'kube-controller-manager',
        binaries.kubeControllerManager,
        controllerManagerArgs({ kubeconfig, pki, kcmPort, caFile }),
        logs,
        watchdog,
      );
      started.push(kcm);
    }

    // The apiserver creates `default` itself; the serviceaccount controller then
    // gives it a `default` ServiceAccount. Tests need both.
    await waitUntil(deadline, apiserver, 'the default namespace', async () => {
      return (await api('/api/v1/namespaces/default')) === 200;
    });
    if (kcm !== undefined) {
      await waitUntil(deadline, kcm, 'the default ServiceAccount (serviceaccount controller)', async () => {
        return (await api('/api/v1/namespaces/default/serviceaccounts/default')) === 200;
      });
    }
    log(`control plane ready in ${Date.now() - t0} ms (${dir})`);

    const processes = started.map((s) => ({ name: s.name, pid: s.child.pid ?? -1, logFile: s.logFile }));
    const apiServer = apiServerControl({
      started,
      processes,
      spawn: () => spawnLogged('kube-apiserver', binaries.kubeApiserver, apiArgs, logs, watchdog),
      ready: async () => (await api('/readyz')) === 200,
    });
    return {
      kubeconfig,
      server,
      caFile,
      adminToken,
      issuer,
      controllerManager: kcm !== undefined,
      binaries,
      binDir: binaries.dir,
      dir,
      processes,
      apiServer,
      rss: () => Object.fromEntries(processes.map((p) => [p.name, rssBytes(p.pid)])),
      stop: stopAndForget,
    };
  } catch (error) {
    await stopAndForget();
    throw error;
  }
}

/**
 * Stops and restarts kube-apiserver in place: its entry in `started` (which
 * stop() and the exit handler walk) and in `processes` follow the new process.
 * The same --cert-dir keeps the serving certificate, so clients still trust it.
 */
function apiServerControl(o: {
  started: Started[];
  processes: ProcessInfo[];
  spawn: () => Started;
  ready: () => Promise<boolean>;
}): ApiServerControl {
  const index = o.started.findIndex((s) => s.name === 'kube-apiserver');
  const current = (): Started => o.started[index] as Started;
  return {
    get running() {
      return current().exitCode === undefined;
    },
    async stop() {
      // It stops listening at once on SIGTERM, but then waits for the controller
      // manager's open watches to close (seconds): past 2 s, kill it.
      await stopAll([current()], 2_000);
    },
    async start(timeoutMs = 60_000) {
      if (current().exitCode === undefined) return;
      const next = o.spawn();
      o.started[index] = next;
      const info = o.processes.find((p) => p.name === 'kube-apiserver');
      if (info !== undefined) info.pid = next.child.pid ?? -1;
      await waitUntil(Date.now() + timeoutMs, next, 'kube-apiserver answering /readyz again', o.ready);
    },
  };
}

function etcdArgs(dir: string, clientUrl: string, peerPort: number): string[] {
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  return [
    '--name=originguard',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=originguard=${peerUrl}`,
    // A throwaway store: durability costs seconds of fsync on a busy disk.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

function apiserverArgs(o: { pki: string; etcdUrl: string; apiPort: number; issuer: string }): string[] {
  return [
    `--etcd-servers=${o.etcdUrl}`,
    '--bind-address=127.0.0.1',
    // Without a default route the apiserver cannot pick an address itself.
    '--advertise-address=127.0.0.1',
    `--secure-port=${o.apiPort}`,
    // No --tls-cert-file: the apiserver writes a self-signed apiserver.crt here.
    `--cert-dir=${o.pki}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--authorization-mode=Node,RBAC',
    `--token-auth-file=${join(o.pki, 'tokens.csv')}`,
    `--service-account-issuer=${o.issuer}`,
    `--service-account-key-file=${join(o.pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(o.pki, 'sa.key')}`,
    '--allow-privileged=true',
    // The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints validation refuses.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
    '--v=1',
  ];
}

function controllerManagerArgs(o: {
  kubeconfig: string;
  pki: string;
  kcmPort: number;
  caFile: string;
}): string[] {
  return [
    `--kubeconfig=${o.kubeconfig}`,
    `--authentication-kubeconfig=${o.kubeconfig}`,
    `--authorization-kubeconfig=${o.kubeconfig}`,
    // There is no client-CA ConfigMap (no --client-ca-file): do not keep looking for it.
    '--authentication-skip-lookup=true',
    '--bind-address=127.0.0.1',
    `--secure-port=${o.kcmPort}`,
    '--leader-elect=false',
    '--use-service-account-credentials=false',
    '--controllers=*',
    `--root-ca-file=${o.caFile}`,
    `--service-account-private-key-file=${join(o.pki, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--allocate-node-cidrs=false',
    '--profiling=false',
    '--v=1',
  ];
}

async function writeCredentials(pki: string, adminToken: string): Promise<void> {
  // The TokenRequest API signs pod-bound service-account tokens with this key.
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(join(pki, 'sa.pub'), publicKey);
  await writeFile(join(pki, 'sa.key'), privateKey, { mode: 0o600 });
  // token,user,uid,"groups": a static bearer token for an admin in system:masters.
  await writeFile(
    join(pki, 'tokens.csv'),
    `${adminToken},originguard-admin,originguard-admin,"system:masters"\n`,
    {
      mode: 0o600,
    },
  );
}

/** A kubeconfig for `server` that trusts `caFile` and authenticates with a bearer `token`. */
export function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: originguard
    cluster:
      server: ${server}
      certificate-authority: ${caFile}
users:
  - name: originguard-admin
    user:
      token: ${token}
contexts:
  - name: originguard
    context:
      cluster: originguard
      user: originguard-admin
      namespace: default
current-context: originguard
`;
}

/** GETs a path on the apiserver as admin; resolves the HTTP status (0 if unreachable). */
function apiClient(server: string, ca: Buffer, token: string): (path: string) => Promise<number> {
  return (path) =>
    new Promise((res) => {
      const req = request(
        `${server}${path}`,
        { ca, headers: { authorization: `Bearer ${token}` }, timeout: 5_000 },
        (r) => {
          r.resume();
          res(r.statusCode ?? 0);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => res(0));
      req.end();
    });
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}
