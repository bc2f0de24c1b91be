import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { visibleModels } from '../../auth/principal.js';
import { capabilities, type CatalogModel } from '../../catalog/catalog.js';
import { refuseReranker } from '../capability.js';
import type { ApiDeps } from '../deps.js';
import { lastResult } from '../last-result.js';
import { modelOrDefault, requireModel } from '../model-lookup.js';
import { assertTextFits, slotContext, textBytes } from '../prompt-cap.js';
import { registerOpenAiEmbeddings } from './embeddings.js';
import { completeWithSuffix } from './fim.js';
import { passThrough } from './passthrough.js';

const open = { additionalProperties: true } as const;
/** llama-server serves one model and ignores `model`, so its clients often leave it out (see modelOrDefault). */
const model = Type.Optional(Type.String());
const Body = Type.Object({ model }, open);
const ChatCompletion = Type.Object(
  {
    model,
    messages: Type.Array(Type.Object({ role: Type.String() }, open), { minItems: 1 }),
    stream: Type.Optional(Type.Boolean()),
  },
  open,
);
const Completion = Type.Object(
  {
    model,
    prompt: Type.Union([Type.String(), Type.Array(Type.Unknown())]),
    suffix: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    stream: Type.Optional(Type.Boolean()),
  },
  open,
);

/** OpenAI and Anthropic paths passed to llama-server as they are, routed by `model`. */
const GENERATION: { path: string; schema: object }[] = [
  { path: '/v1/chat/completions', schema: ChatCompletion },
  { path: '/v1/responses', schema: Body },
  { path: '/v1/messages', schema: Body },
];

type Request = { Body: Record<string, unknown> & { model?: string } };

/**
 * The OpenAI API (and Anthropic's Messages): pick the model's child by `model`, forward the body, pipe
 * the answer back byte for byte; completions with a suffix and embeddings are translated.
 */
export function registerOpenAi(app: FastifyInstance, deps: ApiDeps): void {
  for (const route of [...GENERATION, { path: '/v1/completions', schema: Completion }]) {
    app.post<Request>(route.path, { schema: { body: route.schema } }, (request, reply) => {
      const body = request.body;
      const m = modelOrDefault(deps, body.model, request);
      refuseReranker(m, 'generate text');
      const suffix = body.suffix;
      if (route.path === '/v1/completions' && typeof suffix === 'string' && (suffix !== '' || m.gguf.hasFim))
        return completeWithSuffix(deps, request, reply, m, body);
      assertTextFits(m, slotContext(m, deps.schedulable(m).ctxSize), textBytes(body));
      return passThrough(deps, request, reply, { model: m, path: route.path, body });
    });
  }
  // What the prompt would take, without generating: counted by the model's own template and tokenizer.
  app.post<Request>('/v1/messages/count_tokens', { schema: { body: Body } }, (request, reply) => {
    const m = modelOrDefault(deps, request.body.model, request);
    return passThrough(deps, request, reply, { model: m, path: '/v1/messages/count_tokens', body: request.body });
  });
  registerOpenAiEmbeddings(app, deps);
  registerModelList(app, deps);
}

function modelEntry(m: CatalogModel): object {
  return {
    id: m.name,
    object: 'model',
    created: Math.floor(m.modifiedAt.getTime() / 1000),
    owned_by: 'corral',
    // Not OpenAI's; what the model can do, in Ollama's names (see capabilities).
    capabilities: capabilities(m),
  };
}

function registerModelList(app: FastifyInstance, deps: ApiDeps): void {
  const modelsJson = (list: readonly CatalogModel[]) => JSON.stringify({ object: 'list', data: list.map(modelEntry) });
  const models = lastResult(modelsJson);
  app.get('/v1/models', (request, reply) => {
    if (deps.fleet)
      return reply.type('application/json; charset=utf-8').send(deps.fleet.openAiModels(request.principal));
    const list = deps.catalog.list();
    const visible = visibleModels(request.principal, list);
    return reply.type('application/json; charset=utf-8').send(visible === list ? models(list) : modelsJson(visible));
  });

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const remote = deps.catalog.resolve(request.params.id)
      ? undefined
      : deps.fleet?.openAiModel(request.principal, request.params.id);
    return remote ?? modelEntry(requireModel(deps, request.params.id, request));
  });
}
