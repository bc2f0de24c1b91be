import type { FastifyInstance } from 'fastify';
import { capabilities } from '../../catalog/catalog.js';
import { can, type AdminContext } from '../context.js';
import { ownerOf } from './conversations.js';
import { formatBytes } from '../view-models.js';

/**
 * Playground and Pull: the pages are server-rendered, the work is done by the page script calling
 * the public API (/api/chat, /api/pull, /api/delete) with the same session, so the UI exercises
 * exactly what clients get.
 */
export function registerToolRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/admin/playground', async (request, reply) => {
    const models = ctx.deps.catalog
      .list()
      .filter((m) => !m.embedding)
      .map((m) => ({ name: m.name, vision: capabilities(m).includes('vision') }));
    const q = request.query as Record<string, unknown>;
    const conversations = ctx.deps.store.conversations.list(ownerOf(request));
    const current = typeof q.c === 'string' ? conversations.find((c) => c.id === q.c) : undefined;
    return ctx.page(request, reply, 'playground', 'Playground', {
      models,
      selected: current?.model ?? (typeof q.model === 'string' ? q.model : models[0]?.name),
      conversations,
      current: current?.id,
    });
  });

  app.get('/admin/pull', async (request, reply) => {
    const models = ctx.deps.catalog.list().map((m) => ({ name: m.name, size: formatBytes(m.size), source: m.source }));
    return ctx.page(request, reply, 'pull', 'Pull models', { models, canDelete: can(request, 'admin') });
  });
}
