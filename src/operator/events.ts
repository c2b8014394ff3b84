// Kubernetes Events (events.k8s.io/v1) about Origins, so `kubectl describe
// origin` and `kubectl get events` show when an origin became unreachable, why,
// and when it recovered. Recording is best effort: a failed Event never fails a
// reconcile, it is logged.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { clip } from '../api/status.ts';
import { type KubeClient, resourcePath } from '../kube/client.ts';
import type { KubeObject } from '../kube/objects.ts';
import { microTime } from '../kube/time.ts';
import { OPERATOR_FIELD_MANAGER, REPORTING_CONTROLLER } from './names.ts';
import { type EventSpec, MAX_NOTE } from './status-events.ts';

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
      note: clip(event.note, MAX_NOTE),
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
