import type { FastifyInstance, FastifyRequest, FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
import type { ApiDeps } from '../deps.js';
import { clientAbortSignal } from '../client-abort.js';
import { requireModel } from '../model-lookup.js';
import { keepAliveMs, loadOptions, mergeOptions } from './options.js';

const open = { additionalProperties: true } as const;
const EmbedBody = Type.Object(
  {
    model: Type.String(),
    input: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    truncate: Type.Optional(Type.Boolean()),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
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

/** Ollama returns unit-length vectors; `dimensions` keeps the first n and renormalises. */
export function normalize(v: number[], dimensions?: number): number[] {
  const cut = dimensions && dimensions < v.length ? v.slice(0, dimensions) : v;
  const norm = Math.sqrt(cut.reduce((s, x) => s + x * x, 0));
  return norm > 0 ? cut.map((x) => x / norm) : cut;
}

function requireEmbedding(model: CatalogModel): void {
  if (!model.embedding)
    throw new BadRequest(
      `model "${model.name}" does not support embeddings (configure it with embedding: true, or use an embedding model)`,
    );
}

interface EmbedRun {
  vectors: number[][];
  promptTokens: number;
  loadDurationMs: number;
}

/**
 * Embeds each input through one lease. Inputs longer than a slot's context are cut to fit (sent
 * as token ids) when truncating, and refused with 400 otherwise, as Ollama does.
 */
async function runEmbed(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  model: CatalogModel,
  inputs: string[],
  truncate: boolean,
  keepAlive: number | undefined,
  options: Record<string, unknown>,
): Promise<EmbedRun> {
  const signal = clientAbortSignal(reply);
  const call = { signal, requestId: request.id };
  const lease = { keepAliveMs: keepAlive, ...loadOptions(options), signal };
  return deps.scheduler.withLease(deps.schedulable(model), lease, async (client, info) => {
    deps.observe?.leased?.(request, model.name, info);
    const limit = (await client.slotContext(call)) - 1; // one position for BOS
    const prepared: (string | number[])[] = [];
    for (const [i, text] of inputs.entries()) {
      const tokens = await client.tokenize(text, { addSpecial: false }, call);
      if (tokens.length <= limit) prepared.push(text);
      else if (truncate) prepared.push(tokens.slice(0, limit));
      else
        throw new BadRequest(
          `input${inputs.length > 1 ? `[${i}]` : ''} length (${tokens.length} tokens) exceeds the context length (${limit + 1}) and "truncate" is false`,
        );
    }
    if (prepared.length === 0) return { vectors: [], promptTokens: 0, loadDurationMs: info.loadDurationMs };
    const result = await client.embed(prepared, call);
    request.log.debug({ n: prepared.length }, 'embedded');
    return { ...result, loadDurationMs: info.loadDurationMs };
  });
}

export function registerEmbed(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: EmbedBody }>('/api/embed', { schema: { body: EmbedBody } }, async (request, reply) => {
    const startedAt = process.hrtime.bigint();
    const body = request.body;
    const model = requireModel(deps, body.model, request);
    requireEmbedding(model);
    const inputs = body.input === undefined ? [] : typeof body.input === 'string' ? [body.input] : body.input;
    const run = await runEmbed(
      deps,
      request,
      reply,
      model,
      inputs,
      body.truncate !== false,
      keepAliveMs(body.keep_alive),
      mergeOptions(model.options, body.options),
    );
    return {
      model: model.name,
      embeddings: run.vectors.map((v) => normalize(v, body.dimensions)),
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
      requireEmbedding(model);
      if (!body.prompt) return { embedding: [] };
      const run = await runEmbed(
        deps,
        request,
        reply,
        model,
        [body.prompt],
        true,
        keepAliveMs(body.keep_alive),
        mergeOptions(model.options, body.options),
      );
      return { embedding: run.vectors[0] ?? [] };
    },
  );
}
