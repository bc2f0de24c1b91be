import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
import { refuseReranker, requireFim, requireReranker } from '../capability.js';
import type { ApiDeps } from '../deps.js';
import { modelOrDefault } from '../model-lookup.js';
import { passThrough } from '../openai/passthrough.js';
import { assertTextFits, slotContext, textBytes } from '../prompt-cap.js';

const open = { additionalProperties: true } as const;
const model = Type.Optional(Type.String());
const Strings = Type.Array(Type.String());

interface NativeRoute {
  paths: string[];
  /** llama-server's path for it. */
  upstream: string;
  schema: object;
  /** What the model must be able to do, and whether the prompt must fit its context. */
  check?: (m: CatalogModel, body: Record<string, unknown>, ctx: number) => void;
}

function fitsContext(m: CatalogModel, body: Record<string, unknown>, ctx: number): void {
  assertTextFits(m, ctx, textBytes(body));
}

/** Each document is scored with the query in one sequence of its own. */
function rerankable(m: CatalogModel, body: Record<string, unknown>, ctx: number): void {
  requireReranker(m);
  const documents = body.documents ?? body.texts;
  if (!Array.isArray(documents) || documents.length === 0 || !documents.every((d) => typeof d === 'string'))
    throw new BadRequest('invalid value for "documents": must be a non-empty array of strings');
  const query = textBytes(body.query);
  for (const doc of documents as string[]) assertTextFits(m, ctx, query + Buffer.byteLength(doc));
}

/** llama-server looks token ids up unchecked (a 500 for one past its vocabulary). */
function assertTokens(m: CatalogModel, tokens: number[]): void {
  const size = m.gguf.vocabSize;
  const bad = tokens.find((t) => t >= size);
  if (size && bad !== undefined)
    throw new BadRequest(
      `invalid value for "tokens": ${bad} is not a token of model "${m.name}" (${size} in its vocabulary)`,
    );
}

const ROUTES: NativeRoute[] = [
  {
    paths: ['/infill'],
    upstream: '/infill',
    schema: Type.Object(
      {
        model,
        input_prefix: Type.Optional(Type.String()),
        input_suffix: Type.Optional(Type.String()),
        prompt: Type.Optional(Type.String()),
        stream: Type.Optional(Type.Boolean()),
      },
      open,
    ),
    check: (m, body, ctx) => {
      requireFim(m, '/infill');
      fitsContext(m, body, ctx);
    },
  },
  {
    paths: ['/v1/rerank', '/rerank', '/v1/reranking', '/reranking'],
    upstream: '/v1/rerank',
    schema: Type.Object(
      {
        model,
        query: Type.String(),
        documents: Type.Optional(Strings),
        texts: Type.Optional(Strings),
        top_n: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 })),
      },
      open,
    ),
    check: rerankable,
  },
  {
    paths: ['/tokenize'],
    upstream: '/tokenize',
    schema: Type.Object({ model, content: Type.String() }, open),
  },
  {
    paths: ['/detokenize'],
    upstream: '/detokenize',
    schema: Type.Object({ model, tokens: Type.Array(Type.Integer({ minimum: 0 })) }, open),
    check: (m, body) => assertTokens(m, body.tokens as number[]),
  },
  {
    paths: ['/apply-template'],
    upstream: '/apply-template',
    schema: Type.Object({ model, messages: Type.Array(Type.Object({ role: Type.String() }, open)) }, open),
    check: (m) => refuseReranker(m, 'apply a chat template'),
  },
];

type Request = { Body: Record<string, unknown> & { model?: string } };

/**
 * llama-server's own endpoints (what llama.vscode, llama.vim, RAG pipelines and tools call), routed by
 * `model` like the /v1 ones: loaded on demand, queued, counted and logged, under the caller's
 * allow-list and limits. Passed through as they are, answered by llama-server.
 */
export function registerLlamaCpp(app: FastifyInstance, deps: ApiDeps): void {
  for (const route of ROUTES) {
    for (const path of route.paths) {
      app.post<Request>(path, { schema: { body: route.schema } }, (request, reply) => {
        const body = request.body;
        const m = modelOrDefault(deps, body.model, request);
        route.check?.(m, body, slotContext(m, deps.schedulable(m).ctxSize));
        return passThrough(deps, request, reply, { model: m, path: route.upstream, body });
      });
    }
  }
}
