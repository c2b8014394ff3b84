// The admin port, apart from edge traffic: liveness, readiness, Prometheus
// metrics and a JSON view of each origin's health.
import Fastify, { type FastifyInstance } from 'fastify';
import type { HealthSnapshot } from './health.ts';
import type { SidecarMetrics } from './metrics.ts';

export interface AdminSource {
  readonly ready: boolean;
  health(): HealthSnapshot[];
  configErrors(): readonly string[];
  /** Cluster mode: the pod, its labels, the API server and the reports (shown under `cluster`). */
  cluster?(): unknown;
}

export function createAdminServer(source: AdminSource, metrics: SidecarMetrics): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/readyz', async (_req, reply) => {
    if (source.ready) return reply.type('text/plain').send('ready\n');
    return reply.code(503).type('text/plain').send('not ready\n');
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  app.get('/status', async () => ({
    ready: source.ready,
    configErrors: source.configErrors(),
    origins: source.health(),
    ...(source.cluster === undefined ? {} : { cluster: source.cluster() }),
  }));
  return app;
}
