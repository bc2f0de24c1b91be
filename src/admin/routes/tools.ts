import type { FastifyInstance } from 'fastify';
import { capabilities } from '../../catalog/catalog.js';
import { can, type AdminContext } from '../context.js';
import { ownerOf } from './conversations.js';
import { formatBytes } from '../view-models.js';
import type { CatalogModel } from '../../catalog/catalog.js';
import { deletePlan } from '../../models/delete-plan.js';
import { manifestPath, readManifest } from '../../models/manifest.js';
import { managedModelsDir } from '../../models/pull.js';

/** Where a model comes from, in the Pull page's words. */
const SOURCES: Record<CatalogModel['source'], string> = {
  config: 'config file',
  discovered: 'models directory',
  managed: 'pulled or made here',
  ollama: 'Ollama store',
};

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
    const conversations = await ctx.deps.store.conversations.list(ownerOf(request));
    const current = typeof q.c === 'string' ? conversations.find((c) => c.id === q.c) : undefined;
    return ctx.page(request, reply, 'playground', 'Playground', {
      models,
      selected: current?.model ?? (typeof q.model === 'string' ? q.model : models[0]?.name),
      conversations,
      current: current?.id,
    });
  });

  app.get('/admin/pull', async (request, reply) => {
    const { catalog } = ctx.deps;
    const data = await readManifest(manifestPath(catalog.dataDir)).catch(() => ({ models: {}, hidden: {} }));
    const managedDir = managedModelsDir(catalog.modelDirs, '/');
    const models = catalog.list().map((m) => ({
      name: m.name,
      size: formatBytes(m.size),
      source: SOURCES[m.source],
      plan: deletePlan(m, data, managedDir),
    }));
    return ctx.page(request, reply, 'pull', 'Pull models', {
      models,
      canDelete: can(request, 'admin'),
      notes: catalog.warnings,
    });
  });
}
