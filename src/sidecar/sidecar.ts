// The sidecar: turns a set of Origins into runtimes, routes and listeners, and
// applies a new set without dropping requests in flight. Used standalone (from a
// config file) and in a pod (from the Origins that select it).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { originKey } from '../api/contract.ts';
import type { OriginManifest } from '../api/origin.ts';
import type { Resolver } from '../upstream/resolver.ts';
import { type HealthSnapshot, OriginHealth } from './health.ts';
import { type ClientLimits, Listener } from './listener.ts';
import type { SidecarMetrics } from './metrics.ts';
import { OriginRuntime } from './origin-runtime.ts';
import { BodyBudget } from './request-body.ts';
import { buildRoutes, type RouteTable } from './router.ts';
import { SIDECAR_DEFAULTS } from './settings.ts';
import { TunnelSet } from './tunnel.ts';

export interface SidecarOptions {
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly resolver: Resolver;
  readonly limits: ClientLimits;
  readonly maxBodyBytes: number;
  /** Memory for request bodies received before forwarding, all Origins together (default 16 MiB). */
  readonly requestBufferMemory?: number | undefined;
  /**
   * Binds every listener on this address instead of each Origin's
   * spec.listen.address: lets many sidecars run in one process (e.g. one per
   * 127.0.0.x) without their ports colliding.
   */
  readonly listenAddress?: string | undefined;
  /** Called when an origin's health state or cause changes (the OriginReport writer listens). */
  readonly onHealthChange?: ((key: string, snapshot: HealthSnapshot) => void) | undefined;
}

export interface ApplyResult {
  /** Keys of the Origins now served (an Origin whose port could not be bound is not). */
  readonly applied: string[];
  readonly errors: string[];
  /** The whole set was refused (conflicting routes): the previous one still serves. */
  readonly refused: boolean;
}

export class Sidecar {
  readonly #opts: SidecarOptions;
  readonly #runtimes = new Map<string, OriginRuntime>();
  readonly #health = new Map<string, OriginHealth>();
  readonly #listeners = new Map<number, Listener>();
  readonly #tunnels = new TunnelSet();
  readonly #bootId = randomBytes(4).toString('hex');
  readonly #bodyBudget: BodyBudget;
  #counter = 0;
  #ready = false;
  #draining = false;

  constructor(opts: SidecarOptions) {
    this.#opts = opts;
    this.#bodyBudget = new BodyBudget(opts.requestBufferMemory ?? SIDECAR_DEFAULTS.requestBufferMemory);
  }

  get ready(): boolean {
    return this.#ready && !this.#draining;
  }

  /** Health of every origin, for /status and reports. */
  health(): HealthSnapshot[] {
    return [...this.#runtimes.values()].map((r) => r.health.snapshot());
  }

  /** Health of one served origin, by key (namespace/name). */
  healthOf(key: string): HealthSnapshot | undefined {
    return this.#runtimes.get(key)?.health.snapshot();
  }

  #healthFor(key: string): OriginHealth {
    let h = this.#health.get(key);
    if (h === undefined) {
      h = new OriginHealth(key);
      h.on('change', (s) => {
        this.#opts.metrics.reachable.labels(key).set(s.state === 'Reachable' ? 1 : 0);
        this.#opts.onHealthChange?.(key, s);
      });
      this.#health.set(key, h);
    }
    return h;
  }

  /**
   * Makes the given Origins the served set. Conflicting routes refuse the whole
   * set (the previous one stays); a port that cannot be bound is reported and
   * its Origins are not served, the others are.
   */
  async apply(origins: readonly OriginManifest[]): Promise<ApplyResult> {
    const built = this.#buildRuntimes(origins);
    if ('error' in built) return { applied: [], errors: [built.error], refused: true };
    const { next, created } = built;
    const { table, errors } = buildRoutes([...next.values()]);
    if (errors.length > 0) {
      await Promise.all(created.map((r) => r.destroy()));
      return { applied: [], errors, refused: true };
    }
    const { errors: bindErrors, failedPorts } = await this.#bindListeners(table);
    const old = [...this.#runtimes.values()].filter((r) => next.get(r.key) !== r);
    this.#runtimes.clear();
    for (const [k, v] of next) this.#runtimes.set(k, v);
    // Checks run only for what is served: a new runtime whose port is bound.
    for (const r of created) if (!failedPorts.has(r.listen.port)) r.startChecks();
    // Requests in flight hold their runtime; close() lets them finish.
    for (const r of old) {
      r.close().catch((err: unknown) =>
        this.#opts.logger.warn({ err, origin: r.key }, 'closing old upstream pool'),
      );
    }
    this.#ready = bindErrors.length === 0 || this.#listeners.size > 0;
    const applied = [...next.values()].filter((r) => !failedPorts.has(r.listen.port)).map((r) => r.key);
    return { applied, errors: bindErrors, refused: false };
  }

  /** Keeps the runtime of every Origin whose spec did not change (its pool and ejection state with it). */
  #buildRuntimes(
    origins: readonly OriginManifest[],
  ): { next: Map<string, OriginRuntime>; created: OriginRuntime[] } | { error: string } {
    const next = new Map<string, OriginRuntime>();
    const created: OriginRuntime[] = [];
    try {
      for (const o of origins) {
        const key = originKey(o);
        const current = this.#runtimes.get(key);
        if (current !== undefined && current.fingerprint === JSON.stringify(o.spec)) {
          current.health.generation = o.metadata.generation;
          next.set(key, current);
          continue;
        }
        const rt = new OriginRuntime(o, {
          resolver: this.#opts.resolver,
          metrics: this.#opts.metrics,
          health: this.#healthFor(key),
          logger: this.#opts.logger,
        });
        created.push(rt);
        next.set(key, rt);
      }
    } catch (err) {
      for (const r of created) void r.destroy();
      return { error: `cannot build origin: ${(err as Error).message}` };
    }
    return { next, created };
  }

  /** Opens listeners for new ports, moves changed ones, retires unused ones, and swaps each port's routes. */
  async #bindListeners(
    table: RouteTable<OriginRuntime>,
  ): Promise<{ errors: string[]; failedPorts: Set<number> }> {
    const bindErrors: string[] = [];
    const failedPorts = new Set<number>();
    for (const [port, routes] of table) {
      const first = [...routes.exact.values(), ...routes.wildcards.map(([, o]) => o), routes.fallback].find(
        (o) => o !== undefined,
      );
      const address = this.#opts.listenAddress ?? first?.listen.address ?? '0.0.0.0';
      let listener = this.#listeners.get(port);
      if (listener !== undefined && listener.address !== address) {
        void this.#retire(listener);
        this.#listeners.delete(port);
        listener = undefined;
      }
      if (listener === undefined) {
        listener = this.#newListener(port, address);
        try {
          await listener.start();
        } catch (err) {
          bindErrors.push(`spec.listen: cannot listen on ${address}:${port}: ${(err as Error).message}`);
          failedPorts.add(port);
          continue;
        }
        this.#listeners.set(port, listener);
      }
      listener.routes = routes;
    }
    for (const [port, listener] of this.#listeners) {
      if (!table.has(port)) {
        this.#listeners.delete(port);
        void this.#retire(listener);
      }
    }
    return { errors: bindErrors, failedPorts };
  }

  #newListener(port: number, address: string): Listener {
    const log = this.#opts.logger;
    const clientErrors = this.#opts.metrics.clientErrors;
    return new Listener(
      port,
      address,
      this.#opts.limits,
      {
        maxBodyBytes: this.#opts.maxBodyBytes,
        bodyBudget: this.#bodyBudget,
        via: '1.1 originguard',
        logFailure: (entry, msg) => log.warn(entry, msg),
        clientError: (reason) => clientErrors.labels(reason).inc(),
        nextRequestId: () => `${this.#bootId}-${(++this.#counter).toString(36)}`,
      },
      this.#tunnels,
    );
  }

  async #retire(listener: Listener): Promise<void> {
    try {
      await listener.close();
    } catch (err) {
      this.#opts.logger.warn({ err, port: listener.port }, 'closing listener');
    }
  }

  /**
   * Stops accepting, lets requests in flight and tunnels finish within graceMs,
   * then closes everything: a WebSocket gets a Close 1001 (Going Away) first.
   */
  async drain(graceMs: number): Promise<boolean> {
    this.#draining = true;
    const listeners = [...this.#listeners.values()];
    const closing = Promise.all([...listeners.map((l) => l.close()), this.#tunnels.closed()]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const l of listeners) l.forceClose();
      await this.#tunnels.goAway();
    }
    await Promise.allSettled([...this.#runtimes.values()].map((r) => (timedOut ? r.destroy() : r.close())));
    this.#listeners.clear();
    return !timedOut;
  }
}
