import { PassThrough } from 'node:stream';
import { relative, resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { normalizeModelName, type CatalogModel } from '../../catalog/catalog.js';
import { shardPaths } from '../../catalog/split.js';
import { BadRequest, ModelNotFound, NotImplemented, errorMessage } from '../../errors.js';
import { Manifest, manifestPath, type ManagedEntry } from '../../models/manifest.js';
import { addParameter, assertJinjaTemplate, parseModelfile } from '../../models/modelfile.js';
import { Puller, managedModelsDir, type PullProgress } from '../../models/pull.js';
import type { ApiDeps } from '../deps.js';
import { clientAbortSignal } from '../client-abort.js';
import { requireModel } from '../model-lookup.js';
import { assertModelAllowed } from '../../auth/principal.js';

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
const CreateBody = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1 })),
    name: Type.Optional(Type.String({ minLength: 1 })),
    from: Type.Optional(Type.String({ minLength: 1 })),
    modelfile: Type.Optional(Type.String()),
    system: Type.Optional(Type.String()),
    template: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Object({}, open)),
    files: Type.Optional(Type.Object({}, open)),
    adapters: Type.Optional(Type.Object({}, open)),
    quantize: Type.Optional(Type.String()),
    stream: Type.Optional(Type.Boolean()),
  },
  open,
);
type PullBody = Static<typeof PullBody>;
type NameBody = Static<typeof NameBody>;
type CopyBody = Static<typeof CopyBody>;
type CreateBody = Static<typeof CreateBody>;

/** Every file of a model recorded by `path`: its shards when it is split, else the file itself. */
function modelFiles(path: string): string[] {
  try {
    return shardPaths(path);
  } catch {
    return [path];
  }
}

function nameOf(body: { model?: string | undefined; name?: string | undefined }): string {
  const n = body.model ?? body.name;
  if (!n) throw new BadRequest('missing required field "model"');
  return n;
}

/** What a copy or a derived model inherits: everything that defines its behaviour, not its name. */
function snapshot(m: CatalogModel, kind: ManagedEntry['kind'], source?: string): ManagedEntry {
  return {
    kind,
    path: m.path,
    parent: m.name,
    source,
    system: m.system,
    template: m.template,
    options: { ...m.options },
    embedding: m.embedding,
    mmproj: m.mmproj,
    createdAt: new Date().toISOString(),
  };
}

/** Writes NDJSON progress lines as they come, or only the last one for `stream: false`. */
async function progressReply(
  reply: FastifyReply,
  stream: boolean,
  run: (emit: (p: PullProgress) => void) => Promise<void>,
): Promise<FastifyReply> {
  if (!stream) {
    await run(() => undefined);
    return reply.send({ status: 'success' });
  }
  const out = new PassThrough();
  reply.header('content-type', 'application/x-ndjson').send(out);
  run((p) => out.write(`${JSON.stringify(p)}\n`))
    .catch((err) => out.write(`${JSON.stringify({ error: errorMessage(err) })}\n`))
    .finally(() => out.end());
  return reply;
}

/** /api/pull, /api/delete, /api/copy, /api/create, /api/push. Models defined here live in data_dir/models.json. */
export function registerManageRoutes(app: FastifyInstance, deps: ApiDeps): void {
  // One Manifest (and its write lock) per file; data_dir can change on a config reload.
  const manifests = new Map<string, Manifest>();
  const manifest = (): Manifest => {
    const file = manifestPath(deps.catalog.dataDir);
    let m = manifests.get(file);
    if (!m) manifests.set(file, (m = new Manifest(file)));
    return m;
  };
  const managedDir = (): string => managedModelsDir(deps.catalog.modelDirs, '/');
  const puller = new Puller({
    modelsDir: managedDir,
    manifest,
    huggingfaceUrl: () => deps.config().pull.huggingface_url,
    refresh: () => deps.catalog.refresh(),
  });

  app.post<{ Body: PullBody }>(
    '/api/pull',
    { schema: { body: PullBody } }, // who may call it: src/auth/roles.ts
    async (request, reply) => {
      const ref = nameOf(request.body).trim();
      request.auditTarget = ref;
      assertModelAllowed(request.principal, normalizeModelName(ref));
      const job = puller.pull(ref);
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
        if (!entry.source) return undefined;
        // Only files Corral downloaded, inside its managed directory, and no longer used by another model.
        const inside = (p: string): boolean => !relative(dir, resolve(p)).startsWith('..');
        const unused = (p: string | undefined): p is string =>
          p !== undefined && inside(p) && !Object.values(data.models).some((e) => e.path === p || e.mmproj === p);
        // A split model is recorded by its shard 1; the other shards go with it.
        return [entry.path, entry.mmproj].filter(unused).flatMap(modelFiles).filter(inside);
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
      const entry = snapshot(src, 'copy', (await manifest().read()).models[src.name]?.source);
      await manifest().update((data) => {
        data.models[dest] = entry;
        delete data.hidden[dest];
      });
      await deps.catalog.refresh();
      return reply.code(200).send();
    },
  );

  app.post<{ Body: CreateBody }>(
    '/api/create',
    { schema: { body: CreateBody } }, // who may call it: src/auth/roles.ts
    async (request, reply) => {
      const body = request.body;
      const name = normalizeModelName(nameOf(body));
      request.auditTarget = name;
      assertModelAllowed(request.principal, name);
      if (body.files && Object.keys(body.files).length)
        throw new NotImplemented(
          'creating a model from uploaded blobs ("files") is not supported by Corral; use "from" with an existing model or pull a GGUF',
        );
      if (body.adapters && Object.keys(body.adapters).length)
        throw new NotImplemented('LoRA adapters ("adapters") are not supported by /api/create');
      if (body.quantize) throw new NotImplemented('quantizing ("quantize") is not supported by Corral');
      const spec =
        body.modelfile !== undefined ? parseModelfile(body.modelfile) : { parameters: {} as Record<string, unknown> };
      const from = body.from ?? spec.from;
      if (!from) throw new BadRequest('missing required field "from"');
      const base = deps.catalog.resolve(from);
      if (!base) throw new ModelNotFound(from);
      assertModelAllowed(request.principal, base.name);
      const template = body.template ?? spec.template;
      if (template !== undefined) assertJinjaTemplate(template, body.template !== undefined ? 'template' : 'modelfile');
      const options = { ...base.options };
      for (const [k, v] of Object.entries({ ...spec.parameters, ...(body.parameters ?? {}) })) {
        if (k === 'stop') delete options.stop;
        addParameter(options, k, v);
      }
      const entry: ManagedEntry = {
        ...snapshot(base, 'create', (await manifest().read()).models[base.name]?.source),
        system: body.system ?? spec.system ?? base.system,
        template: template ?? base.template,
        options,
      };
      return progressReply(reply, body.stream !== false, async (emit) => {
        emit({ status: 'reading model metadata' });
        if (entry.template !== base.template) emit({ status: 'creating template layer' });
        if (entry.system !== base.system) emit({ status: 'creating system layer' });
        if (Object.keys(options).length) emit({ status: 'creating parameters layer' });
        emit({ status: `using existing layer sha256:${base.digest.replace(/^sha256:/, '')}` });
        emit({ status: 'writing manifest' });
        await manifest().update((data) => {
          data.models[name] = entry;
          delete data.hidden[name];
        });
        await deps.catalog.refresh();
        emit({ status: 'success' });
      });
    },
  );

  app.post('/api/push', async () => {
    throw new NotImplemented(
      'pushing models is not supported by Corral: it serves local GGUF files and has no registry to push to',
    );
  });
}
