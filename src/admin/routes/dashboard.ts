import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { can, csrfOf, isHtmx, modelParam, unknownModel, type AdminContext } from '../context.js';
import { debounce, openSse } from '../sse.js';
import { buildDashboard } from '../view-models.js';

type Action = 'load' | 'unload' | 'restart';

/** Dashboard page, its models fragment, the live SSE feed and the load/unload/restart actions. */
export function registerDashboardRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { deps } = ctx;

  const modelsData = (request: FastifyRequest): Record<string, unknown> => ({
    dash: buildDashboard(deps, ctx.failures),
    csrf: csrfOf(request),
    canOperate: can(request, 'operator'),
  });

  app.get('/admin', async (request, reply) => {
    return ctx.page(request, reply, 'dashboard', 'Dashboard', modelsData(request));
  });

  app.get('/admin/fragments/models', async (request, reply) => {
    const html = await ctx.fragment('models', modelsData(request));
    return reply.type('text/html; charset=utf-8').send(html);
  });

  app.get('/admin/events', async (request, reply) => {
    const sse = openSse(request, reply);
    const push = async (): Promise<void> => {
      try {
        sse.send('models', await ctx.fragment('models', modelsData(request)));
      } catch (err) {
        request.log.warn({ err }, 'admin SSE render failed');
      }
    };
    const onChange = debounce(() => void push(), 100);
    deps.scheduler.on('changed', onChange);
    // A model copied into (or removed from) a models directory appears (or goes) without a reload.
    deps.catalog.on('changed', onChange);
    // "expires at" moves while requests run; a slow tick keeps the numbers honest between events.
    const tick = setInterval(onChange, 10_000);
    sse.onClose(() => {
      deps.scheduler.off('changed', onChange);
      deps.catalog.off('changed', onChange);
      onChange.cancel();
      clearInterval(tick);
    });
    await push();
    return reply;
  });

  const act = (action: Action) => async (request: FastifyRequest, reply: FastifyReply) => {
    const name = modelParam(request);
    const model = name ? deps.catalog.resolve(name) : undefined;
    if (!model) throw unknownModel(name);
    const load = (): void => {
      ctx.failures.delete(model.name);
      // Loading can take minutes: answer at once and let the SSE feed show the progress.
      deps.scheduler.load(deps.schedulable(model)).catch((err: Error) => {
        // A runner's failure is already recorded, with its exit; other refusals (memory) are not.
        if (!ctx.failures.has(model.name)) ctx.failures.set(model.name, { reason: err.message, at: new Date() });
        deps.scheduler.emit('changed');
      });
    };
    request.log.info({ action, model: model.name }, 'admin model action');
    if (action === 'load') load();
    else if (action === 'unload') {
      ctx.failures.delete(model.name);
      await deps.scheduler.unload(model.name, 'unloaded from the admin UI');
    } else {
      await deps.scheduler.unload(model.name, 'restarted from the admin UI');
      load();
    }
    if (!isHtmx(request)) return reply.redirect('/admin', 303);
    const html = await ctx.fragment('models', modelsData(request));
    return reply.type('text/html; charset=utf-8').send(html);
  };
  for (const action of ['load', 'unload', 'restart'] as const) {
    app.post(`/admin/actions/${action}`, act(action));
  }
}
