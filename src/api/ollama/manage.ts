import { rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { normalizeModelName, type CatalogModel } from '../../catalog/catalog.js';
import { Forbidden, NotImplemented } from '../../errors.js';
import { ownedFiles } from '../../models/delete-plan.js';
import { Puller, managedModelsDir, type PullJob, type PullProgress } from '../../models/pull.js';
import { copyManifest } from '../../ollama-store/layer-writer.js';
import { displayName, requireOllamaName } from '../../ollama-store/names.js';
import { RegistryPuller } from '../../registry/registry-pull.js';
import type { ApiDeps } from '../deps.js';
import { clientAbortSignal } from '../client-abort.js';
import { requireModel } from '../model-lookup.js';
import { assertModelAllowed } from '../../auth/principal.js';
import { registerBlobRoutes } from './blobs.js';
import { registerCreate } from './create.js';
import { manageContext, nameOf, snapshot, type ManageContext } from './manage-context.js';
import { progressReply } from './progress.js';

const open = { additionalProperties: true } as const;
const PullBody = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1 })),
    name: Type.Optional(Type.String({ minLength: 1 })),
    stream: Type.Optional(Type.Boolean()),
    insecure: Type.Optional(Type.Boolean()),
  },
  open,
);
const NameBody = Type.Object(
  { model: Type.Optional(Type.String({ minLength: 1 })), name: Type.Optional(Type.String({ minLength: 1 })) },
  open,
);
const CopyBody = Type.Object(
  { source: Type.String({ minLength: 1 }), destination: Type.String({ minLength: 1 }) },
  open,
);
type PullBody = Static<typeof PullBody>;
type NameBody = Static<typeof NameBody>;
type CopyBody = Static<typeof CopyBody>;

/** /api/pull, /api/delete, /api/copy, /api/create, /api/push. Models defined here live in data_dir/models.json. */
export function registerManageRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const ctx = manageContext(deps);
  const { manifest } = ctx;
  const managedDir = (): string => managedModelsDir(deps.catalog.modelDirs, '/');
  const puller = new Puller({
    modelsDir: managedDir,
    manifest,
    huggingfaceUrl: () => deps.config().pull.huggingface_url,
    policy: ctx.policy,
    reserveBytes: ctx.reserve,
    refresh: () => deps.catalog.refresh(),
  });
  const registry = new RegistryPuller({
    stores: ctx.stores,
    registryUrl: () => deps.config().pull.registry_url,
    policy: ctx.policy,
    reserveBytes: ctx.reserve,
    refresh: () => deps.catalog.refresh(),
  });
  /** Hugging Face references and .gguf URLs as before; every other name from an Ollama registry. */
  const startPull = (ref: string, insecure: boolean): PullJob =>
    Puller.supports(ref) ? puller.pull(ref, insecure) : registry.pull(requireOllamaName(ref), insecure);

  app.post<{ Body: PullBody }>(
    '/api/pull',
    { schema: { body: PullBody } }, // who may call it: src/auth/roles.ts
    async (request, reply) => {
      const ref = nameOf(request.body).trim();
      request.auditTarget = ref;
      assertModelAllowed(request.principal, normalizeModelName(ref));
      const job = startPull(ref, request.body.insecure === true);
      const signal = clientAbortSignal(reply);
      const progress: PullProgress[] = [];
      let push: ((p: PullProgress) => void) | undefined;
      const unsubscribe = job.subscribe((p) => (push ? push(p) : progress.push(p)));
      signal.addEventListener('abort', unsubscribe, { once: true });
      try {
        // Resolution errors (unknown repo, missing quant) keep their status instead of a 200 stream.
        await job.resolved;
      } catch (err) {
        unsubscribe();
        throw err;
      }
      return progressReply(reply, request.body.stream !== false, async (emit) => {
        emit({ status: 'pulling manifest' });
        for (const p of progress) emit(p);
        push = emit;
        try {
          await job.done;
        } finally {
          unsubscribe();
        }
      });
    },
  );

  app.delete<{ Body: NameBody }>(
    '/api/delete',
    { schema: { body: NameBody } }, // who may call it: src/auth/roles.ts
    async (request, reply) => {
      const m = requireModel(deps, nameOf(request.body ?? {}), request);
      request.auditTarget = m.name;
      if (m.source === 'ollama') {
        await deleteStoreModel(deps, m);
        return reply.code(200).send();
      }
      await deps.scheduler.unload(m.name, 'deleted');
      const dir = managedDir();
      const doomed = await manifest().update(async (data) => {
        const entry = data.models[m.name];
        if (!entry) {
          // Configured and discovered models are the operator's files: hide them, never delete them.
          data.hidden[m.name] = m.path;
          return undefined;
        }
        delete data.models[m.name];
        // Only files Corral downloaded, inside its managed directory, and no longer used by another model.
        return ownedFiles(entry, data, dir);
      });
      for (const file of doomed ?? [])
        await Promise.all([rm(file, { force: true }), rm(`${file}.partial`, { force: true })]);
      await deps.catalog.refresh();
      return reply.code(200).send();
    },
  );

  app.post<{ Body: CopyBody }>(
    '/api/copy',
    { schema: { body: CopyBody } }, // who may call it: src/auth/roles.ts
    async (request, reply) => {
      const src = requireModel(deps, request.body.source, request);
      const dest = normalizeModelName(request.body.destination);
      request.auditTarget = `${src.name} -> ${dest}`;
      assertModelAllowed(request.principal, dest);
      if (src.source === 'ollama') {
        await copyStoreModel(ctx, src, request.body.destination);
        await deps.catalog.refresh();
        return reply.code(200).send();
      }
      const entry = snapshot(src, 'copy', (await manifest().read()).models[src.name]?.source);
      await manifest().update((data) => {
        data.models[dest] = entry;
        delete data.hidden[dest];
      });
      await deps.catalog.refresh();
      return reply.code(200).send();
    },
  );

  registerCreate(app, deps, ctx);
  registerBlobRoutes(app, ctx);

  app.post('/api/push', async () => {
    throw new NotImplemented(
      'pushing models is not supported by Corral: it serves local GGUF files and has no registry to push to',
    );
  });
}

/**
 * Ollama-store models: deleted (with Ollama's pruning rule) only from a store Corral may write; an
 * existing Ollama install stays untouched unless ollama_store_writable is set.
 */
async function deleteStoreModel(deps: ApiDeps, m: CatalogModel): Promise<void> {
  const { store, name } = m.ollama!;
  if (!store.writable)
    throw new Forbidden(
      `model "${m.name}" is in the Ollama store at ${store.root}, which Corral does not change; set ollama_store_writable: true to let it delete models there`,
    );
  await deps.scheduler.unload(m.name, 'deleted');
  await store.remove(name);
  await deps.catalog.refresh();
}

/** A copy of an Ollama-store model is a manifest in the write store, as `ollama cp` makes it. */
async function copyStoreModel(ctx: ManageContext, src: CatalogModel, destination: string): Promise<void> {
  const dest = requireOllamaName(destination, 'destination');
  await copyManifest(ctx.stores(), src.ollama!.store, src.ollama!.name, dest);
  // A models.json entry of the same name would hide the copy.
  const key = normalizeModelName(displayName(dest));
  await ctx.manifest().update((data) => {
    delete data.models[key];
    delete data.hidden[key];
  });
}
