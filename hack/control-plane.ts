// A real Kubernetes control plane for tests and `npm run cluster`: etcd,
// kube-apiserver and kube-controller-manager on free loopback ports, an admin
// kubeconfig, and a clean shutdown that leaves no process or file behind, even
// when the parent dies without calling stop().
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Paths of the binaries the control plane runs. */
export interface Binaries {
  kubeApiserver: string;
  etcd: string;
  /** Absent when the user's KUBEBUILDER_ASSETS has none: no GC, no default ServiceAccounts, no Deployments. */
  kubeControllerManager?: string;
  /** kubectl matching the control plane when one was built or given; otherwise `kubectl` from PATH. */
  kubectl: string;
  /** Directory that holds kube-apiserver. */
  dir: string;
}

export interface ControlPlaneOptions {
  /** Binaries to run; default: findBinaries(). */
  binaries?: Binaries;
  /** Give up starting after this many ms (default 90 s: a loaded 2-core machine is slow). */
  startTimeoutMs?: number;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
}

export interface ProcessInfo {
  name: 'etcd' | 'kube-apiserver' | 'kube-controller-manager';
  pid: number;
  /** File the process's stdout and stderr go to. */
  logFile: string;
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
  /** Resident memory of each process, in bytes (read from /proc). */
  rss(): Record<string, number>;
  /** Stops every process and removes `dir` (kept, for its logs, if ORIGINGUARD_CP_KEEP=1). Safe to call more than once. */
  stop(): Promise<void>;
}

export class ControlPlaneError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ControlPlaneError';
    this.code = code;
  }
}

function executable(path: string | undefined): path is string {
  return path !== undefined && path !== '' && existsSync(path);
}

/**
 * Finds the binaries, honouring the envtest conventions first
 * (TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD, TEST_ASSET_KUBE_CONTROLLER_MANAGER,
 * TEST_ASSET_KUBECTL, KUBEBUILDER_ASSETS), else builds them once with
 * hack/test-binaries.sh (Go needed). `onBuild` is told when a build is needed.
 */
export async function findBinaries(onBuild?: (message: string) => void): Promise<Binaries> {
  const env = process.env;
  const script = join(repoRoot, 'hack', 'test-binaries.sh');
  const cached = await run('bash', [script, '--check']).then(
    (r) => r.code === 0,
    () => false,
  );
  if (!cached) {
    onBuild?.(
      'building kube-apiserver, kube-controller-manager, etcd, kubectl and helm from their Go modules ' +
        '(first run only: about 15 minutes on 2 cores, and ~5 GB of Go module and build caches; later runs reuse the cache)',
    );
  }
  const r = await run('bash', [script], { inheritStderr: onBuild !== undefined });
  if (r.code !== 0) {
    throw new ControlPlaneError(
      'BINARIES_UNAVAILABLE',
      `hack/test-binaries.sh failed (exit ${r.code}): ${tail(r.stderr, 30) || 'no output'}\n` +
        'Install Go (see docs/development.md), or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd.',
    );
  }
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  const inDir = (name: string): string | undefined =>
    executable(join(dir, name)) ? join(dir, name) : undefined;
  const kubeApiserver = env.TEST_ASSET_KUBE_APISERVER || inDir('kube-apiserver');
  const etcd = env.TEST_ASSET_ETCD || inDir('etcd');
  const kcm = env.TEST_ASSET_KUBE_CONTROLLER_MANAGER || inDir('kube-controller-manager');
  const kubectl = env.TEST_ASSET_KUBECTL || inDir('kubectl') || 'kubectl';
  if (!executable(kubeApiserver) || !executable(etcd)) {
    throw new ControlPlaneError('BINARIES_UNAVAILABLE', `kube-apiserver or etcd missing in ${dir}`);
  }
  return {
    kubeApiserver,
    etcd,
    ...(executable(kcm) ? { kubeControllerManager: kcm } : {}),
    kubectl,
    dir: dirname(kubeApiserver),
  };
}

/** Starts a control plane and waits until it is ready to serve a test. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? (() => {});
  const binaries = options.binaries ?? (await findBinaries(log));
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binaries, deadline, log);
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
    const apiserver = spawnLogged(
      'kube-apiserver',
      binaries.kubeApiserver,
      apiserverArgs({ pki, etcdUrl, apiPort, issuer }),
      logs,
      watchdog,
    );
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
      rss: () => Object.fromEntries(processes.map((p) => [p.name, rssBytes(p.pid)])),
      stop: stopAndForget,
    };
  } catch (error) {
    await stopAndForget();
    throw error;
  }
}

interface Started {
  name: ProcessInfo['name'];
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  exitCode: number | null | undefined;
}

function spawnLogged(
  name: ProcessInfo['name'],
  bin: string,
  args: string[],
  logs: string,
  watchdog: Watchdog,
): Started {
  const logFile = join(logs, `${name}.log`);
  const fd = openSync(logFile, 'a');
  // Own process group: a Ctrl-C in the terminal reaches the parent, which then
  // stops the control plane in order (etcd last) instead of everything at once.
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const started: Started = {
    name,
    child,
    logFile,
    exitCode: undefined,
    exited: new Promise((res) => {
      child.once('exit', (code, signal) => {
        started.exitCode = code ?? (signal ? 128 : null);
        res();
      });
      child.once('error', (err) => {
        started.exitCode = 127;
        void writeFile(logFile, `spawn ${bin}: ${err.message}\n`, { flag: 'a' });
        res();
      });
    }),
  };
  if (child.pid !== undefined) watchdog.watch(child.pid);
  return started;
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

function kubeconfigYaml(server: string, caFile: string, token: string): string {
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

async function waitUntil(
  deadline: number,
  proc: Started,
  what: string,
  check: () => Promise<boolean>,
): Promise<void> {
  for (;;) {
    if (proc.exitCode !== undefined) {
      throw startupError(`${proc.name} exited with code ${proc.exitCode} before ${what}`, proc);
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      throw startupError(`timed out waiting for ${what}`, proc);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

function startupError(message: string, proc: Started): ControlPlaneError {
  let logTail = '';
  try {
    logTail = tail(readFileSync(proc.logFile, 'utf8'), 40);
  } catch {
    logTail = '(no log)';
  }
  return new ControlPlaneError(
    'CONTROL_PLANE_START_FAILED',
    `control plane did not start: ${message}\n--- last lines of ${proc.name}'s log ---\n${logTail}`,
  );
}

async function stopAll(started: Started[]): Promise<void> {
  // Reverse order: controllers first, etcd last, so nothing logs errors about a vanished store.
  for (const s of [...started].reverse()) {
    if (s.exitCode !== undefined) continue;
    s.child.kill('SIGTERM');
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
    await s.exited;
    clearTimeout(timer);
  }
}

interface Watchdog {
  watch(pid: number): void;
  /** Normal shutdown: the watchdog exits without touching anything. */
  release(): void;
}

// A tiny detached process that outlives a killed parent: when its stdin pipe
// closes (the parent died, even by SIGKILL) it kills the control plane's
// processes and removes the temp dir. It ignores SIGINT/SIGTERM so a Ctrl-C to
// the terminal's process group cannot take it down before it has cleaned up.
const WATCHDOG = `
const { rmSync } = require('node:fs');
const dir = process.argv[1];
const pids = new Set();
let released = false;
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (line === 'release') released = true;
    else if (/^\\d+$/.test(line)) pids.add(Number(line));
  }
});
process.stdin.on('end', () => {
  if (released) process.exit(0);
  const kill = (sig) => { for (const p of pids) { try { process.kill(-p, sig); } catch {} try { process.kill(p, sig); } catch {} } };
  kill('SIGTERM');
  setTimeout(() => { kill('SIGKILL'); try { rmSync(dir, { recursive: true, force: true }); } catch {} process.exit(0); }, 3000);
});
`;

function startWatchdog(dir: string): Watchdog {
  const child = spawn(process.execPath, ['-e', WATCHDOG, dir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  // Never keep the parent's event loop alive for the watchdog's sake.
  child.unref();
  const stdin = child.stdin;
  (stdin as unknown as { unref?: () => void } | null)?.unref?.();
  const send = (line: string): void => {
    if (stdin?.writable) stdin.write(`${line}\n`);
  };
  return {
    watch: (pid) => send(String(pid)),
    release: () => {
      send('release');
      stdin?.end();
    },
  };
}

/** Asks the kernel for `n` distinct free ports on 127.0.0.1. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((res, rej) => {
          const s = createServer();
          s.once('error', rej);
          s.listen(0, '127.0.0.1', () => res(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    return typeof addr === 'object' && addr !== null ? addr.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}

function run(
  cmd: string,
  args: string[],
  opts: { inheritStderr?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') rej(error);
      else res({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
    if (opts.inheritStderr) child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
  });
}
