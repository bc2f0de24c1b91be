import { NotImplemented } from '../../errors.js';
import type { FastifyInstance } from 'fastify';
import { isHtmx, type AdminContext } from '../context.js';
import type { ConfigControl } from '../deps.js';

export function registerConfigRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const control = (): ConfigControl | undefined => ctx.deps.configControl;

  const data = async (): Promise<Record<string, unknown>> => {
    const c = control();
    return {
      file: c?.file(),
      yaml: c ? await c.source() : undefined,
      last: c?.lastReload(),
      listen: listening(app, ctx.deps.config().server.port),
    };
  };

  app.get('/admin/config', async (request, reply) => {
    return ctx.page(request, reply, 'config', 'Config', await data());
  });

  app.post('/admin/config/reload', async (request, reply) => {
    const c = control();
    if (!c) throw new NotImplemented('config reload is not available');
    await c.reload();
    if (!isHtmx(request)) return reply.redirect('/admin/config', 303);
    const html = await ctx.fragment('reload-result', { last: c.lastReload() });
    return reply.type('text/html; charset=utf-8').send(html);
  });
}

/**
 * Where this process really listens, read from its socket: `--port`, `--host`, CORRAL_PORT and
 * CORRAL_HOST override the file, so the file's `server.port` alone can be the wrong answer.
 */
function listening(
  app: FastifyInstance,
  filePort: number,
): { url: string; filePort: number; overridden: boolean } | undefined {
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') return undefined;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { url: `http://${host}:${addr.port}`, filePort, overridden: addr.port !== filePort };
}
