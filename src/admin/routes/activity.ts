import type { FastifyInstance } from 'fastify';
import { activityCharts } from '../charts.js';
import type { AdminContext } from '../context.js';

export function registerActivityRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/admin/activity', { config: { auth: { role: 'viewer' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'viewer')) return reply;
    const log = ctx.deps.requestLog;
    const hour = await log?.recent({ limit: 5000, since: new Date(Date.now() - 3600_000) });
    return ctx.page(request, reply, 'activity', 'Activity', {
      recent: log ? (hour ?? []).slice(0, 100) : undefined,
      charts: hour ? activityCharts(hour) : undefined,
    });
  });
}
