// Kubernetes Events (events.k8s.io/v1) about Origins, so `kubectl describe
// origin` and `kubectl get events` show when an origin became unreachable, why,
// and when it recovered. Recording is best effort: a failed Event never fails a
// reconcile, it is logged.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import { resourcePath } from '../kube/client.ts';
import { OPERATOR_FIELD_MANAGER, REPORTING_CONTROLLER } from './names.ts';

export interface EventSpec {
  type: 'Normal' | 'Warning';
  /** CamelCase, e.g. OriginUnreachable. */
  reason: string;
  /** For people: what happened and what to check. */
  note: string;
}

const MAX_NOTE = 1024;
const microTime = (d: Date) => d.toISOString().replace('Z', '000Z');

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly instance: string;
  private readonly logger: Logger;

  constructor(client: KubeClient, instance: string, logger: Logger) {
    this.client = client;
    this.instance = instance;
    this.logger = logger;
  }

  async record(regarding: KubeObject, event: EventSpec): Promise<boolean> {
    const { name, namespace, uid, resourceVersion } = regarding.metadata;
    const now = new Date();
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${name}.${now.getTime().toString(16)}${randomBytes(2).toString('hex')}`, namespace },
      eventTime: microTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.instance.slice(0, 128),
      action: 'Aggregate',
      type: event.type,
      reason: event.reason,
      note: event.note.length > MAX_NOTE ? `${event.note.slice(0, MAX_NOTE - 1)}…` : event.note,
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name,
        namespace,
        uid,
        resourceVersion,
      },
    };
    try {
      await this.client.create(
        resourcePath({ group: 'events.k8s.io', version: 'v1', plural: 'events', namespace }),
        body,
        OPERATOR_FIELD_MANAGER,
      );
      return true;
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message, reason: event.reason, origin: `${namespace}/${name}` },
        'could not record event',
      );
      return false;
    }
  }
}
