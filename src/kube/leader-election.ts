// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules:
// a candidate takes the lease only when its holder has not renewed it for
// leaseDuration, as measured on the candidate's own clock from when it last saw
// the lease change (clocks of different machines are never compared); a leader
// that cannot renew within renewDeadline steps down; on shutdown the leader
// releases the lease so another replica takes over at once. Writes carry the
// resourceVersion they read, so two candidates never both win.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { type KubeClient, resourcePath } from './client.ts';
import { isConflict, isNotFound } from './errors.ts';
import { microTime } from './time.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** This replica's identity, e.g. the pod name; a random suffix keeps restarts apart. */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export class LeaderElector {
  readonly identity: string;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** The lease as last read, and when (on our clock) its holder or renewTime last changed. */
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private lastRenew = 0;
  private readonly path: string;
  private readonly client: KubeClient;
  private readonly opts: LeaderElectionOptions;

  constructor(client: KubeClient, opts: LeaderElectionOptions) {
    this.client = client;
    this.opts = opts;
    this.identity = `${opts.identity}_${randomBytes(4).toString('hex')}`;
    this.path = resourcePath({
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      namespace: opts.namespace,
      name: opts.name,
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /**
   * Stops campaigning. A leader releases the lease so another replica takes over
   * at once; with `release` false it just stops renewing, as a crash would.
   */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    if (!release) return;
    try {
      const lease = await this.client.get<Lease>(this.path);
      if (lease?.spec.holderIdentity === this.identity) {
        const now = new Date();
        lease.spec = {
          ...lease.spec,
          holderIdentity: null,
          leaseDurationSeconds: 1,
          renewTime: microTime(now),
        };
        await this.client.replace(this.path, lease);
      }
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'could not release the leader lease');
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.opts.logger.warn(
        { err: (err as Error).message, lease: this.opts.name },
        'leader election: lease update failed',
      );
    }
    if (this.leading && Date.now() - this.lastRenew > this.opts.renewDeadlineMs) {
      this.opts.logger.error(
        { lease: this.opts.name },
        'leader election: could not renew the lease in time; stepping down',
      );
      this.setLeading(false);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.opts.retryPeriodMs);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = new Date();
    const lease = await this.client.get<Lease>(this.path);
    const spec = this.desiredSpec(now, lease);
    if (lease === undefined) {
      await this.write('POST', { metadata: { name: this.opts.name, namespace: this.opts.namespace }, spec });
      return;
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    if (this.observed?.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: Date.now() };
    }
    const durationMs = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
    const heldByOther = holder !== '' && holder !== this.identity;
    if (heldByOther && this.observed.at + durationMs > Date.now()) {
      if (this.leading) this.setLeading(false);
      return;
    }
    await this.write('PUT', { ...lease, spec });
  }

  private desiredSpec(now: Date, lease: Lease | undefined): Lease['spec'] {
    const mine = lease?.spec.holderIdentity === this.identity;
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
      acquireTime: mine && lease?.spec.acquireTime ? lease.spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (lease?.spec.leaseTransitions ?? 0) + (mine || lease === undefined ? 0 : 1),
    };
  }

  private async write(method: 'POST' | 'PUT', lease: Lease): Promise<void> {
    try {
      if (method === 'POST') {
        await this.client.create(
          resourcePath({
            group: 'coordination.k8s.io',
            version: 'v1',
            plural: 'leases',
            namespace: this.opts.namespace,
          }),
          lease,
        );
      } else {
        await this.client.replace(this.path, lease);
      }
    } catch (err) {
      // Someone else wrote first: they hold it (or renewed it); we look again next period.
      if (isConflict(err) || isNotFound(err) || (err as { status?: number }).status === 409) return;
      throw err;
    }
    this.lastRenew = Date.now();
    if (!this.leading) this.setLeading(true);
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.opts.logger.info(
      { lease: this.opts.name, identity: this.identity, leading },
      leading ? 'became leader' : 'no longer leader',
    );
    if (leading) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }
}
