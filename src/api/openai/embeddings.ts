import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { embedInputs, withDimensions } from '../embedding.js';
import { modelOrDefault } from '../model-lookup.js';
import { keepAliveMs } from '../ollama/options.js';

const Tokens = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 });
const EmbeddingsBody = Type.Object(
  {
    model: Type.Optional(Type.String()),
    input: Type.Union([
      Type.String({ minLength: 1 }),
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 2048 }),
      Tokens,
      Type.Array(Tokens, { minItems: 1, maxItems: 2048 }),
    ]),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64'), Type.Null()])),
    /** Not OpenAI's: false refuses an input longer than the context, as OpenAI does; by default it is cut, as Ollama does. */
    truncate: Type.Optional(Type.Boolean()),
    keep_alive: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  },
  { additionalProperties: true },
);
type EmbeddingsBody = Static<typeof EmbeddingsBody>;

/** OpenAI's base64 encoding: the vector's float32 values, little-endian. */
function base64(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (const [i, x] of vector.entries()) bytes.writeFloatLE(x, i * 4);
  return bytes.toString('base64');
}

/** The inputs one by one: a string, strings, token ids, or lists of token ids. */
function inputsOf(input: EmbeddingsBody['input']): (string | number[])[] {
  if (typeof input === 'string') return [input];
  if (input.every((x) => typeof x === 'number')) return [input as number[]];
  return input as (string | number[])[];
}

/**
 * OpenAI's embeddings through the same path as Ollama's /api/embed (any model embeds; inputs longer
 * than the context are cut unless `truncate: false`), answered in OpenAI's shape with `dimensions`
 * and `encoding_format` applied.
 */
export function registerOpenAiEmbeddings(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: EmbeddingsBody }>('/v1/embeddings', { schema: { body: EmbeddingsBody } }, async (request, reply) => {
    const body = request.body;
    const model = modelOrDefault(deps, body.model, request);
    const run = await embedInputs(deps, request, reply, {
      model,
      inputs: inputsOf(body.input),
      truncate: body.truncate !== false,
      keepAliveMs: keepAliveMs(body.keep_alive),
    });
    const encode = body.encoding_format === 'base64' ? base64 : (v: number[]) => v;
    return {
      object: 'list',
      data: withDimensions(model, run.vectors, body.dimensions).map((v, index) => ({
        object: 'embedding',
        index,
        embedding: encode(v),
      })),
      model: model.name,
      usage: { prompt_tokens: run.promptTokens, total_tokens: run.promptTokens },
    };
  });
}
