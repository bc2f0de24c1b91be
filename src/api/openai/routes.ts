import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { visibleModels } from '../../auth/principal.js';
import { BadRequest } from '../../errors.js';
import { postJson } from '../../upstream/client.js';
import type { ApiDeps } from '../deps.js';
import { clientAbortSignal } from '../client-abort.js';
import { endSseTogether } from '../coalesce-end.js';
import { leaseAndStart } from '../lease.js';
import { lastResult } from '../last-result.js';
import { requireModel } from '../model-lookup.js';
import { keepAliveMs, samplingParams } from '../ollama/options.js';
import type { CatalogModel } from '../../catalog/catalog.js';
import { upstreamHeaders } from '../request-id.js';
import { tapUsage } from '../../metrics/usage-tap.js';
import { firstRemoteUrl, mediaUrls } from './media.js';

const open = { additionalProperties: true } as const;
const WithModel = Type.Object({ model: Type.String() }, open);
const ChatCompletion = Type.Object(
  {
    model: Type.String(),
    messages: Type.Array(Type.Object({ role: Type.String() }, open), { minItems: 1 }),
    stream: Type.Optional(Type.Boolean()),
  },
  open,
);
const Completion = Type.Object(
  {
    model: Type.String(),
    prompt: Type.Union([Type.String(), Type.Array(Type.Unknown())]),
    stream: Type.Optional(Type.Boolean()),
  },
  open,
);
const Embeddings = Type.Object(
  { model: Type.String(), input: Type.Union([Type.String(), Type.Array(Type.Unknown())]) },
  open,
);

/** llama-server paths that take an OpenAI-style body routed by its `model` field. */
const PASSTHROUGH: { path: string; schema: object; embedding?: boolean }[] = [
  { path: '/v1/chat/completions', schema: ChatCompletion },
  { path: '/v1/completions', schema: Completion },
  { path: '/v1/embeddings', schema: Embeddings, embedding: true },
  { path: '/v1/responses', schema: WithModel },
  { path: '/v1/messages', schema: WithModel },
];

/**
 * The OpenAI API: pick the runner by `model`, forward the body, pipe the answer back byte for byte.
 * Nothing is parsed or re-serialised per token, so streaming costs the same as talking to llama-server.
 */
export function registerOpenAi(app: FastifyInstance, deps: ApiDeps): void {
  for (const route of PASSTHROUGH) {
    app.post<{ Body: Record<string, unknown> & { model: string } }>(
      route.path,
      { schema: { body: route.schema } },
      (request, reply) => forward(deps, request, reply, route.path, route.embedding ?? false),
    );
  }

  const modelsJson = (list: readonly CatalogModel[]) =>
    JSON.stringify({
      object: 'list',
      data: list.map((m) => ({
        id: m.name,
        object: 'model',
        created: Math.floor(m.modifiedAt.getTime() / 1000),
        owned_by: 'corral',
      })),
    });
  const models = lastResult(modelsJson);
  app.get('/v1/models', (request, reply) => {
    const list = deps.catalog.list();
    const visible = visibleModels(request.principal, list);
    return reply.type('application/json; charset=utf-8').send(visible === list ? models(list) : modelsJson(visible));
  });

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const m = requireModel(deps, request.params.id, request);
    return { id: m.name, object: 'model', created: Math.floor(m.modifiedAt.getTime() / 1000), owned_by: 'corral' };
  });
}

/**
 * A model's own defaults (config `options`, or a derived model's parameters and system prompt)
 * apply to OpenAI requests too; anything the request sets wins.
 */
export function withModelDefaults(
  model: CatalogModel,
  body: Record<string, unknown>,
  path: string,
): Record<string, unknown> {
  if (path === '/v1/embeddings') return body;
  const defaults = samplingParams(model.options);
  // llama-server prefers n_predict over max_tokens, so a default must not shadow the request's limit.
  if (body.max_tokens !== undefined || body.max_completion_tokens !== undefined || body.n_predict !== undefined)
    delete defaults.n_predict;
  const out: Record<string, unknown> = { ...defaults, ...body };
  const messages = body.messages;
  if (
    path === '/v1/chat/completions' &&
    model.system &&
    Array.isArray(messages) &&
    !messages.some((m) => (m as { role?: string }).role === 'system')
  ) {
    out.messages = [{ role: 'system', content: model.system }, ...messages];
  }
  return out;
}

async function forward(
  deps: ApiDeps,
  request: FastifyRequest<{ Body: Record<string, unknown> & { model: string } }>,
  reply: FastifyReply,
  path: string,
  embedding: boolean,
): Promise<FastifyReply> {
  const body = request.body;
  const model = requireModel(deps, body.model, request);
  if (embedding && !model.embedding)
    throw new BadRequest(`model "${model.name}" is not an embedding model (set embedding: true in its config)`);
  const media = mediaUrls(body);
  // llama-server answers an image for a model without a projector with a 500; it is the client's mistake.
  if (media.length && !model.mmproj)
    throw new BadRequest(`model "${model.name}" does not support images (no mmproj configured)`);
  const remote = firstRemoteUrl(media);
  if (remote !== undefined && !deps.config().server.remote_media) {
    throw new BadRequest(
      `remote media URLs are not fetched (${remote.slice(0, 80)}): send images inline as data: URLs, or set server.remote_media: true`,
    );
  }
  const signal = clientAbortSignal(reply);
  const { lease, value: upstream } = await leaseAndStart(
    deps,
    request,
    model,
    { keepAliveMs: keepAliveMs(body.keep_alive), signal },
    (runner) =>
      postJson(
        runner.pool!,
        path,
        { ...withModelDefaults(model, body, path), model: model.name },
        signal,
        upstreamHeaders(request),
      ),
  );
  const observe = deps.observe;
  upstream.body.once('close', () => lease.release());
  const type = upstream.headers['content-type'];
  if (type) reply.header('content-type', type);
  const length = upstream.headers['content-length'];
  // The body passes byte for byte, so its length holds: no chunked framing (and no terminator write).
  if (length !== undefined) reply.header('content-length', length);
  if (String(type).includes('text/event-stream')) {
    reply.header('cache-control', 'no-cache');
    endSseTogether(upstream.body, reply.raw);
  }
  if (observe)
    tapUsage(
      upstream.body,
      reply.raw,
      () => observe.firstToken?.(request),
      (p, g) => observe.usage?.(request, p, g),
    );
  return reply.code(upstream.status).send(upstream.body);
}
