import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ApiDeps } from '../deps.js';
import { embedInputs, withDimensions } from '../embedding.js';
import { requireModel } from '../model-lookup.js';
import { keepAliveMs, loadOptions, mergeOptions } from './options.js';

const open = { additionalProperties: true } as const;
const EmbedBody = Type.Object(
  {
    model: Type.String(),
    input: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    truncate: Type.Optional(Type.Boolean()),
    // Ollama reads 0 as "all of them".
    dimensions: Type.Optional(Type.Integer({ minimum: 0 })),
    options: Type.Optional(Type.Object({}, open)),
    keep_alive: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  },
  open,
);
const EmbeddingsBody = Type.Object(
  {
    model: Type.String(),
    prompt: Type.Optional(Type.String()),
    options: Type.Optional(Type.Object({}, open)),
    keep_alive: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  },
  open,
);
type EmbedBody = Static<typeof EmbedBody>;
type EmbeddingsBody = Static<typeof EmbeddingsBody>;

export function registerEmbed(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: EmbedBody }>('/api/embed', { schema: { body: EmbedBody } }, async (request, reply) => {
    const startedAt = process.hrtime.bigint();
    const body = request.body;
    const model = requireModel(deps, body.model, request);
    const inputs =
      body.input === undefined || body.input === '' ? [] : typeof body.input === 'string' ? [body.input] : body.input;
    const run = await embedInputs(deps, request, reply, {
      model,
      inputs,
      truncate: body.truncate !== false,
      keepAliveMs: keepAliveMs(body.keep_alive),
      ...loadOptions(mergeOptions(model.options, body.options)),
    });
    return {
      model: model.name,
      embeddings: withDimensions(model, run.vectors, body.dimensions),
      total_duration: Number(process.hrtime.bigint() - startedAt),
      load_duration: Math.round(run.loadDurationMs * 1e6),
      prompt_eval_count: run.promptTokens,
    };
  });

  // The legacy endpoint: one prompt, one vector, not normalised by Ollama either way; kept as llama-server returns it.
  app.post<{ Body: EmbeddingsBody }>(
    '/api/embeddings',
    { schema: { body: EmbeddingsBody } },
    async (request, reply) => {
      const body = request.body;
      const model = requireModel(deps, body.model, request);
      const run = await embedInputs(deps, request, reply, {
        model,
        inputs: body.prompt ? [body.prompt] : [],
        truncate: true,
        keepAliveMs: keepAliveMs(body.keep_alive),
        ...loadOptions(mergeOptions(model.options, body.options)),
      });
      return { embedding: run.vectors[0] ?? [] };
    },
  );
}
