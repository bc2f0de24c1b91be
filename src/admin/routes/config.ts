import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { ConfigError, parseConfig } from '../../config/load.js';
import { isHtmx, type AdminContext } from '../context.js';
import type { ConfigControl, ReloadResult } from '../deps.js';

/**
 * Until the config watcher provides a ConfigControl, the reload button validates the file on disk
 * and reports its file:line problems, without applying anything.
 */
export function validateOnlyControl(file: string | undefined, initialSource: string, env: NodeJS.ProcessEnv = process.env): ConfigControl {
  let last: ReloadResult | undefined;
  return {
    file: () => file,
    source: async () => (file ? readFile(file, 'utf8').catch(() => initialSource) : initialSource),
    lastReload: () => last,
    async reload() {
      if (!file) return (last = { at: new Date(), ok: false, summary: 'no config file (running on the embedded defaults)', problems: [] });
      try {
        parseConfig(await readFile(file, 'utf8'), file, env);
        last = { at: new Date(), ok: true, summary: 'valid, but not applied: hot reload is not available in this build (restart Corral)', problems: [] };
      } catch (err) {
        last = { at: new Date(), ok: false, summary: 'rejected; the previous config stays in effect', problems: err instanceof ConfigError ? err.problems : [(err as Error).message] };
      }
      return last;
    },
  };
}

export function registerConfigRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const control = (): ConfigControl | undefined => ctx.deps.configControl;

  const data = async (): Promise<Record<string, unknown>> => {
    const c = control();
    return { file: c?.file(), yaml: c ? await c.source() : undefined, last: c?.lastReload() };
  };

  app.get('/admin/config', { config: { auth: { role: 'viewer' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'viewer')) return reply;
    return ctx.page(request, reply, 'config', 'Config', await data());
  });

  app.post('/admin/config/reload', { config: { auth: { role: 'admin' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'admin', { csrf: true })) return reply;
    const c = control();
    if (!c) return reply.code(501).type('text/plain; charset=utf-8').send('config reload is not available');
    await c.reload();
    if (!isHtmx(request)) return reply.redirect('/admin/config', 303);
    const html = await ctx.fragment('reload-result', { last: c.lastReload() });
    return reply.type('text/html; charset=utf-8').send(html);
  });
}
