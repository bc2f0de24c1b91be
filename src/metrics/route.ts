import type { FastifyInstance } from 'fastify';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { CorralMetrics } from './registry.js';
import { scrapeRunners } from './runner-scrape.js';
import type { SchedulerCollector } from './scheduler-collector.js';

/** GET /metrics: Corral's own registry followed by every ready llama-server's metrics with a `model` label. */
export function registerMetricsRoute(
  app: FastifyInstance,
  deps: {
    metrics: CorralMetrics;
    collector: SchedulerCollector;
    scheduler: Scheduler;
    runnerTimeoutMs?: number;
    /** In a fleet: added to the children's series as `node` (Corral's own carry it as a default label). */
    node?: string | undefined;
  },
): void {
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    deps.collector.refresh();
    const [own, runners] = await Promise.all([
      deps.metrics.registry.metrics(),
      scrapeRunners(deps.scheduler, deps.runnerTimeoutMs, deps.node),
    ]);
    reply.header('content-type', deps.metrics.registry.contentType);
    return runners ? `${own}\n${runners}` : own;
  });
}
