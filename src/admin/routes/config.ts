import type { FastifyInstance } from 'fastify';
import { isHtmx, type AdminContext } from '../context.js';
import type { ConfigControl } from '../deps.js';

export function registerConfigRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const control = (): ConfigControl | undefined => ctx.deps.configControl;

  const data = async (): Promise<Record<string, unknown>> => {
    const c = control();
    return { file: c?.file(), yaml: c ? await c.source() : undefined, last: c?.lastReload() };
  };

  app.get('/admin/config', async (request, reply) => {
    return ctx.page(request, reply, 'config', 'Config', await data());
  });

  app.post('/admin/config/reload', async (request, reply) => {
    const c = control();
    if (!c) return reply.code(501).type('text/plain; charset=utf-8').send('config reload is not available');
    await c.reload();
    if (!isHtmx(request)) return reply.redirect('/admin/config', 303);
    const html = await ctx.fragment('reload-result', { last: c.lastReload() });
    return reply.type('text/html; charset=utf-8').send(html);
  });
}
