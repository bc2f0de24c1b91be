import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { assertModelAllowed } from '../../auth/principal.js';
import { normalizeModelName, type CatalogModel } from '../../catalog/catalog.js';
import { readGguf } from '../../catalog/gguf.js';
import { BadRequest, ModelNotFound } from '../../errors.js';
import type { ManagedEntry } from '../../models/manifest.js';
import { addParameter, isGoTemplate, parseModelfile } from '../../models/modelfile.js';
import { createStoreModel, type StoreCreateSpec } from '../../ollama-store/create-model.js';
import { adoptFile, requireBlob } from '../../ollama-store/layer-writer.js';
import { displayName, parseDigest, requireOllamaName } from '../../ollama-store/names.js';
import { clientAbortSignal } from '../client-abort.js';
import type { ApiDeps } from '../deps.js';
import {
  cancelQuantizesOnClose,
  planQuantize,
  quantizeFile,
  quantizeStep,
  type QuantizePlan,
  type QuantizeSource,
} from './create-quantize.js';
import { goTemplateProblem } from './go-template.js';
import { nameOf, snapshot, type ManageContext } from './manage-context.js';
import { progressReply } from './progress.js';

const open = { additionalProperties: true } as const;
const Files = Type.Record(Type.String(), Type.String());
const CreateBody = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1 })),
    name: Type.Optional(Type.String({ minLength: 1 })),
    from: Type.Optional(Type.String({ minLength: 1 })),
    modelfile: Type.Optional(Type.String()),
    system: Type.Optional(Type.String()),
    template: Type.Optional(Type.String()),
    license: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    parameters: Type.Optional(Type.Object({}, open)),
    messages: Type.Optional(Type.Array(Type.Object({ role: Type.String(), content: Type.String() }, open))),
    files: Type.Optional(Files),
    adapters: Type.Optional(Files),
    quantize: Type.Optional(Type.String()),
    quantization: Type.Optional(Type.String()),
    stream: Type.Optional(Type.Boolean()),
  },
  open,
);
type CreateBody = Static<typeof CreateBody>;

/** What a create asks for, from the JSON fields and (older clients) a Modelfile. */
interface CreatePlan {
  from?: string | undefined;
  template?: string | undefined;
  system?: string | undefined;
  parameters: Record<string, unknown>;
  license?: string[] | undefined;
  messages?: { role: string; content: string }[] | undefined;
}

function planOf(body: CreateBody): CreatePlan {
  const mf = body.modelfile !== undefined ? parseModelfile(body.modelfile) : { parameters: {} };
  const parameters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ ...mf.parameters, ...(body.parameters ?? {}) })) addParameter(parameters, k, v);
  return {
    from: body.from ?? ('from' in mf ? mf.from : undefined),
    template: body.template ?? ('template' in mf ? mf.template : undefined),
    system: body.system ?? ('system' in mf ? mf.system : undefined),
    parameters,
    license: typeof body.license === 'string' ? [body.license] : body.license,
    messages: body.messages?.map((m) => ({ role: m.role, content: m.content })),
  };
}

/**
 * Corral renders an Ollama Go template only for a GGUF without a chat template of its own; for one
 * that has one, llama-server applies it, so a Go template there would be ignored: refused instead.
 */
function checkTemplate(template: string | undefined, ggufTemplate: string | undefined): void {
  if (template === undefined || !isGoTemplate(template)) return;
  const problem = goTemplateProblem(template);
  if (problem) throw new BadRequest(`invalid value for "template": ${problem}`);
  if (ggufTemplate)
    throw new BadRequest(
      'invalid value for "template": this GGUF has its own Jinja chat template, which llama-server applies; ' +
        'an Ollama Go template would be ignored, so give a Jinja template (e.g. {% for message in messages %}...) to replace it',
    );
}

/** POST /api/create: an Ollama manifest for uploaded files or Ollama-store bases, else a models.json entry. */
export function registerCreate(app: FastifyInstance, deps: ApiDeps, ctx: ManageContext): void {
  const awaitOnClose = cancelQuantizesOnClose(app, deps.quantizer);
  app.post<{ Body: CreateBody }>(
    '/api/create',
    { schema: { body: CreateBody } }, // who may call it: src/auth/roles.ts
    async (request, reply) => {
      const body = request.body;
      const raw = nameOf(body);
      const name = normalizeModelName(raw);
      request.auditTarget = name;
      assertModelAllowed(request.principal, name);
      const plan = planOf(body);
      const base = plan.from !== undefined ? deps.catalog.resolve(plan.from) : undefined;
      if (plan.from !== undefined && !base) throw new ModelNotFound(plan.from);
      if (base) assertModelAllowed(request.principal, base.name);
      const stream = body.stream !== false;
      const respond: Respond = (run) => progressReply(reply, stream, run);
      // Ollama's cmp.Or: the first of the two that is not empty.
      const req = {
        raw,
        plan,
        base,
        body,
        quantize: body.quantize || body.quantization,
        signal: clientAbortSignal(reply),
      };
      if (req.quantize) awaitOnClose(reply);
      // As in Ollama, "from" wins over "files".
      const hasFiles = Object.keys(body.files ?? {}).length > 0;
      if ((!base && hasFiles) || base?.source === 'ollama') return createInStore(deps, ctx, req, respond);
      if (!base) throw new BadRequest("neither 'from' or 'files' was specified");
      checkTemplate(plan.template, base.gguf.chatTemplate);
      const source = { fileType: base.gguf.quantization, size: base.size };
      const quantize = await planQuantize(deps, ctx, req.quantize, source, req.signal);
      if (quantize) return createQuantized(deps, ctx, { ...req, base }, quantize, respond);
      const entry = await derivedEntry(ctx, base, plan, body.adapters);
      return respond(async (emit) => {
        emit({ status: 'reading model metadata' });
        if (entry.template !== base.template) emit({ status: 'creating template layer' });
        if (entry.system !== base.system) emit({ status: 'creating system layer' });
        if (Object.keys(entry.options ?? {}).length) emit({ status: 'creating parameters layer' });
        emit({ status: `using existing layer sha256:${base.digest.replace(/^sha256:/, '')}` });
        emit({ status: 'writing manifest' });
        await ctx.manifest().update((data) => {
          data.models[name] = entry;
          delete data.hidden[name];
        });
        await deps.catalog.refresh();
        emit({ status: 'success' });
      });
    },
  );
}

/** A model derived from a configured, discovered or managed one: a models.json entry snapshotting its base. */
async function derivedEntry(
  ctx: ManageContext,
  base: CatalogModel,
  plan: CreatePlan,
  adapters: Record<string, string> | undefined,
): Promise<ManagedEntry> {
  const options = { ...base.options };
  for (const [k, v] of Object.entries(plan.parameters)) {
    if (k === 'stop') delete options.stop;
    addParameter(options, k, v);
  }
  const loras: string[] = [];
  for (const digest of Object.values(adapters ?? {})) {
    const d = parseDigest(digest);
    if (!d) throw new BadRequest('invalid digest format');
    loras.push(await requireBlob(ctx.stores(), d));
  }
  if (loras.length > 1) throw new BadRequest('only one adapter is currently supported');
  return {
    ...snapshot(base, 'create', (await ctx.manifest().read()).models[base.name]?.source),
    system: plan.system ?? base.system,
    template: plan.template ?? base.template,
    options,
    adapters: loras.length ? loras : undefined,
    license: plan.license?.join('\n') ?? base.license,
    messages: plan.messages ?? base.messages,
  };
}

interface StoreCreate {
  raw: string;
  plan: CreatePlan;
  base: CatalogModel | undefined;
  body: CreateBody;
  /** The type to quantize the model to, as asked. */
  quantize: string | undefined;
  signal: AbortSignal;
}

type Emit = Parameters<typeof createStoreModel>[2];
type Respond = (run: (emit: Emit) => Promise<void>) => Promise<FastifyReply>;

/** Ollama's own way: layers and a manifest in the write store (an Ollama that shares the store sees the model too). */
async function createInStore(deps: ApiDeps, ctx: ManageContext, req: StoreCreate, reply: Respond) {
  const target = requireOllamaName(req.raw);
  const fromStore = req.base;
  let source: QuantizeSource | undefined;
  if (fromStore) {
    checkTemplate(req.plan.template, fromStore.gguf.chatTemplate);
    source = { fileType: fromStore.gguf.quantization, size: fromStore.size };
  } else if (req.quantize || (req.plan.template !== undefined && isGoTemplate(req.plan.template))) {
    const model = await modelFile(ctx, req.body.files ?? {});
    checkTemplate(req.plan.template, model?.chatTemplate);
    source = model;
  }
  const quantize = await planQuantize(deps, ctx, req.quantize, source, req.signal);
  const steps = quantize ? [quantizeStep(quantize, ctx.stores().target)] : [];
  return reply(async (emit) => {
    const spec = specOf(req, target);
    if (fromStore) spec.base = { manifest: fromStore.ollama!.manifest, display: fromStore.displayName! };
    else spec.files = req.body.files;
    await createStoreModel(ctx.stores(), spec, emit, steps);
    await announce(deps, ctx, target, emit);
  });
}

/**
 * A configured, discovered or pulled GGUF quantized into the write store: a new Ollama-layout model
 * with its base's template, system prompt, parameters, license, messages and projector.
 */
async function createQuantized(
  deps: ApiDeps,
  ctx: ManageContext,
  req: StoreCreate & { base: CatalogModel },
  quantize: QuantizePlan,
  reply: Respond,
) {
  const target = requireOllamaName(req.raw);
  const { base, plan } = req;
  return reply(async (emit) => {
    const store = ctx.stores().target;
    const made: string[] = [];
    try {
      const model = await quantizeFile(quantize, store, { path: base.path, size: base.size }, emit);
      made.push(model.digest);
      const files: Record<string, string> = { [basename(base.path)]: model.digest };
      if (base.mmproj) {
        const projector = await adoptFile(store, base.mmproj);
        if (projector.created) made.push(projector.digest);
        files[`projector-${basename(base.mmproj)}`] = projector.digest;
      }
      const spec = specOf(req, target);
      await createStoreModel(
        ctx.stores(),
        {
          ...spec,
          files,
          template: plan.template ?? base.template,
          system: plan.system ?? base.system,
          parameters: { ...base.options, ...plan.parameters },
          messages: plan.messages ?? base.messages,
          license: plan.license ?? (base.license ? [base.license] : undefined),
        },
        emit,
      );
    } catch (err) {
      // Nothing half-made stays: the quantized blob and a copied projector go unless a manifest uses them.
      await store.removeUnreferenced(made);
      throw err;
    }
    await announce(deps, ctx, target, emit);
  });
}

function specOf(req: StoreCreate, name: StoreCreateSpec['name']): StoreCreateSpec {
  return {
    name,
    adapters: req.body.adapters,
    template: req.plan.template,
    system: req.plan.system,
    parameters: req.plan.parameters,
    messages: req.plan.messages,
    license: req.plan.license,
  };
}

/** The new store model takes its name from any models.json entry of that name, and is listed. */
async function announce(deps: ApiDeps, ctx: ManageContext, target: StoreCreateSpec['name'], emit: Emit) {
  const key = normalizeModelName(displayName(target));
  await ctx.manifest().update((data) => {
    delete data.models[key];
    delete data.hidden[key];
  });
  await deps.catalog.refresh();
  emit({ status: 'success' });
}

/** The uploaded model GGUF (not an adapter or projector): its chat template, file type and size. */
async function modelFile(
  ctx: ManageContext,
  files: Record<string, string>,
): Promise<(QuantizeSource & { chatTemplate: string | undefined }) | undefined> {
  for (const key of Object.keys(files).sort()) {
    const d = parseDigest(files[key]!);
    if (!d) throw new BadRequest('invalid digest format');
    const path = await requireBlob(ctx.stores(), d);
    const gguf = await readGguf(path).catch(() => undefined);
    const kind = gguf?.metadata['general.type'];
    if (gguf && kind !== 'adapter' && kind !== 'mmproj' && gguf.architecture !== 'clip')
      return { chatTemplate: gguf.chatTemplate, fileType: gguf.quantization, size: (await stat(path)).size };
  }
  return undefined;
}
