// Keeps the served Origins right in a pod: on every Origin or label change it
// re-reads the pod's labels, selects the Origins that select them (pure, in
// origin-selection.ts), applies them to the Sidecar live and hands the served set
// to the report writer. One pass at a time, and once more if something changed
// meanwhile; the first pass completed is what makes the sidecar ready.
import type { Logger } from 'pino';
import { originKey } from '../api/contract.ts';
import type { OriginManifest } from '../api/origin.ts';
import type { Informer } from '../kube/informer.ts';
import type { KubeObject } from '../kube/objects.ts';
import type { SidecarMetrics } from './metrics.ts';
import { selectOrigins } from './origin-selection.ts';
import type { Labels } from './pod-identity.ts';
import type { ReportWriter, ServedOrigin } from './report-writer.ts';
import type { Sidecar } from './sidecar.ts';

/** An Origin as the informer holds it, before validation. */
export type OriginObject = KubeObject & { spec?: unknown };

const served = (o: OriginManifest): ServedOrigin => ({
  key: originKey(o),
  name: o.metadata.name,
  uid: o.metadata.uid,
  generation: o.metadata.generation ?? 0,
});

export interface LoopDeps {
  readonly sidecar: Sidecar;
  readonly writer: ReportWriter;
  readonly informer: Informer<OriginObject>;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  /** The pod's labels, or how to read them. */
  readonly labels: Labels | (() => Labels | Promise<Labels>);
  /** Ports an Origin may not listen on (the admin port); filled once it is bound. */
  readonly reservedPorts: readonly number[];
}

/** Re-selects and applies the served Origins whenever an Origin or the pod's labels change. */
export class SelectionLoop {
  readonly #deps: LoopDeps;
  labels: Labels = {};
  errors: string[] = [];
  #labelsText = '';
  #lastGood = new Map<string, OriginManifest>();
  #served = '';
  #done = false;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #labelsError: string | undefined;
  #resolveFirst: () => void = () => {};
  readonly firstApplied = new Promise<void>((resolve) => {
    this.#resolveFirst = resolve;
  });

  constructor(deps: LoopDeps) {
    this.#deps = deps;
    if (typeof deps.labels !== 'function') this.#setLabels(deps.labels);
  }

  get ready(): boolean {
    return this.#done && this.#deps.sidecar.ready;
  }

  trigger(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
    });
  }

  /** Re-reads the labels; a change re-selects. */
  async pollLabels(): Promise<void> {
    if (!this.#deps.informer.synced) return;
    if (await this.#readLabels()) this.trigger();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #run(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#readLabels();
        await this.#apply();
      } catch (err) {
        this.#deps.logger.error({ err }, 'applying the Origins that select this pod failed');
      }
    } while (this.#again && !this.#stopped);
  }

  #setLabels(labels: Labels): boolean {
    const text = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    if (text === this.#labelsText) return false;
    this.#labelsText = text;
    this.labels = { ...labels };
    return true;
  }

  /** Reads the labels; keeps the last ones when they cannot be read. True if they changed. */
  async #readLabels(): Promise<boolean> {
    const source = this.#deps.labels;
    if (typeof source !== 'function') return false;
    try {
      const changed = this.#setLabels(await source());
      this.#labelsError = undefined;
      if (changed) this.#deps.logger.info({ labels: this.labels }, 'pod labels read');
      return changed;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.#labelsError) {
        this.#deps.logger.error({ err: message }, 'cannot read the pod labels; keeping the last ones read');
      }
      this.#labelsError = message;
      return false;
    }
  }

  async #apply(): Promise<void> {
    const { sidecar, writer, informer, logger, metrics } = this.#deps;
    const selection = selectOrigins({
      origins: informer.list(),
      labels: this.labels,
      reservedPorts: this.#deps.reservedPorts,
      lastGood: this.#lastGood,
    });
    const result = await sidecar.apply(selection.serve);
    const errors = [...selection.errors, ...result.errors];
    if (this.#labelsError !== undefined) errors.unshift(this.#labelsError);
    if (!result.refused) {
      const applied = new Set(result.applied);
      const now = selection.serve.filter((o) => applied.has(originKey(o)));
      this.#lastGood = new Map(now.map((o) => [originKey(o), o]));
      writer.sync(now.map(served));
      const text = now.map((o) => `${originKey(o)}@${o.metadata.generation ?? 0}`).join(',');
      if (text !== this.#served) {
        this.#served = text;
        metrics.configReloads.labels('applied').inc();
        logger.info({ origins: now.map((o) => originKey(o)) }, 'serving the Origins that select this pod');
      }
    }
    if (errors.join('\n') !== this.errors.join('\n')) {
      if (errors.length > 0) {
        metrics.configReloads.labels('rejected').inc();
        logger.error({ errors }, 'Origins refused; the others keep serving');
      } else if (this.errors.length > 0) logger.info('every Origin that selects this pod is served');
    }
    this.errors = errors;
    if (!this.#done) {
      this.#done = true;
      this.#resolveFirst();
      // Since the process started (performance's time origin): the pod's start-to-ready.
      const sinceProcessStartMs = Math.round(performance.now());
      logger.info(
        { origins: result.applied, sinceProcessStartMs },
        'sidecar ready: first list of Origins applied',
      );
    }
  }
}
