import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { visibleModels } from '../../auth/principal.js';
import { BadRequest } from '../../errors.js';
import { withSamplingDefaults } from '../../llama/dialect.js';
import type { ApiDeps } from '../deps.js';
import { clientAbortSignal } from '../client-abort.js';
import { endSseTogether } from '../coalesce-end.js';
import { lastResult } from '../last-result.js';
import { requireModel } from '../model-lookup.js';
import { keepAliveMs, sampling } from '../ollama/options.js';
import type { CatalogModel } from '../../catalog/catalog.js';
import { firstRemoteUrl, mediaUrls } from './media.js';
import { relay, streamErrorEvent } from './relay.js';
import { tapUsage } from './usage-tap.js';

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
    if (remote) return remote;
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
  const out = withSamplingDefaults(body, sampling(model.options));
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
  const call = { signal, requestId: request.id };
  const upstreamBody = { ...withModelDefaults(model, body, path), model: model.name };
  const lease = { keepAliveMs: keepAliveMs(body.keep_alive), signal };
  return deps.scheduler.withLease(deps.schedulable(model), lease, async (client, info) => {
    deps.observe?.leased?.(request, model.name, info);
    const upstream = await client.forward({ path, body: upstreamBody }, call);
    const type = upstream.headers['content-type'];
    const sse = String(type).includes('text/event-stream');
    const { out, done } = relay(upstream.body, sse ? streamErrorEvent(path) : undefined);
    if (type) reply.header('content-type', type);
    const length = upstream.headers['content-length'];
    // The body passes byte for byte, so its length holds: no chunked framing (and no terminator write).
    if (length !== undefined) reply.header('content-length', length);
    if (sse) {
      reply.header('cache-control', 'no-cache');
      endSseTogether(out, reply.raw);
    }
    const observe = deps.observe;
    if (observe)
      tapUsage(
        out,
        reply.raw,
        () => observe.firstToken?.(request),
        (p, g) => observe.usage?.(request, p, g),
      );
    reply.code(upstream.status).send(out);
    await done;
    return reply;
  });
}
