import type { FastifyInstance } from 'fastify';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { CorralMetrics } from './registry.js';
import { scrapeRunners } from './runner-scrape.js';
import type { SchedulerCollector } from './scheduler-collector.js';

/** GET /metrics: Corral's own registry followed by every ready llama-server's metrics with a `model` label. */
export function registerMetricsRoute(
  app: FastifyInstance,
  deps: { metrics: CorralMetrics; collector: SchedulerCollector; scheduler: Scheduler; runnerTimeoutMs?: number },
): void {
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    deps.collector.refresh();
    const [own, runners] = await Promise.all([
      deps.metrics.registry.metrics(),
      scrapeRunners(deps.scheduler, deps.runnerTimeoutMs),
    ]);
    reply.header('content-type', deps.metrics.registry.contentType);
    return runners ? `${own}\n${runners}` : own;
  });
}
