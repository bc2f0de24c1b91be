import type { FastifyInstance } from 'fastify';
import { activityCharts } from '../charts.js';
import type { AdminContext } from '../context.js';
import { recentRequests } from '../request-records.js';

export function registerActivityRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/admin/activity', async (request, reply) => {
    const hour = recentRequests(ctx.deps.store, { limit: 5000, since: new Date(Date.now() - 3600_000) });
    return ctx.page(request, reply, 'activity', 'Activity', {
      recent: hour.slice(0, 100),
      charts: activityCharts(hour),
    });
  });
}
