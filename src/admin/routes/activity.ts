import type { FastifyInstance } from 'fastify';
import { activityCharts } from '../charts.js';
import type { AdminContext } from '../context.js';
import { outcomeCounts, recentRequests } from '../request-records.js';
import { debounce, openSse } from '../sse.js';

/** The Activity page, and its live feed: the same fragment re-rendered when a request is logged. */
export function registerActivityRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const data = async (): Promise<Record<string, unknown>> => {
    const hour = await recentRequests(ctx.deps.store, { limit: 5000, since: new Date(Date.now() - 3600_000) });
    return {
      recent: hour.slice(0, 100),
      counts: outcomeCounts(hour),
      charts: activityCharts(hour),
      newest: hour[0]?.id ?? 0,
    };
  };

  app.get('/admin/activity', async (request, reply) => {
    return ctx.page(request, reply, 'activity', 'Activity', await data());
  });

  app.get('/admin/activity/events', async (request, reply) => {
    const sse = openSse(request, reply);
    let shown = -1;
    const push = async (force: boolean): Promise<void> => {
      try {
        const d = await data();
        if (!force && d.newest === shown) return;
        shown = d.newest as number;
        sse.send('activity', await ctx.fragment('activity', d));
      } catch (err) {
        request.log.warn({ err }, 'admin activity SSE render failed');
      }
    };
    // At most one re-render a second, and only when a request reached the log: a busy server would
    // otherwise have every open Activity page re-read the hour's requests for each request.
    const onRequest = debounce(() => void push(false), 1000);
    const unsubscribe = ctx.deps.onRequestFinished?.(onRequest);
    // The time axis moves even when nothing happens.
    const tick = setInterval(() => void push(true), 30_000);
    sse.onClose(() => {
      unsubscribe?.();
      onRequest.cancel();
      clearInterval(tick);
    });
    await push(true);
    return reply;
  });
}
