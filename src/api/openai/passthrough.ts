import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
import { withSamplingDefaults } from '../../llama/dialect.js';
import type { Purpose } from '../../scheduler/plans.js';
import { clientAbortSignal } from '../client-abort.js';
import { endSseTogether } from '../coalesce-end.js';
import type { ApiDeps } from '../deps.js';
import { keepAliveMs, sampling } from '../ollama/options.js';
import { firstRemoteUrl, mediaUrls } from './media.js';
import { messageStartFix } from './message-start.js';
import { relay, streamErrorEvent } from './relay.js';
import { tapUsage } from './usage-tap.js';

/** llama-server paths that generate text: the model's sampling defaults apply to them. */
const GENERATES = new Set(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/messages', '/infill']);

/**
 * A model's own defaults (config `options`, or a derived model's parameters and system prompt)
 * apply to OpenAI requests too; anything the request sets wins.
 */
export function withModelDefaults(
  model: CatalogModel,
  body: Record<string, unknown>,
  path: string,
): Record<string, unknown> {
  if (!GENERATES.has(path)) return body;
  const out = withSamplingDefaults(body, sampling(model.options));
  const messages = body.messages;
  if (
    path === '/v1/chat/completions' &&
    model.system &&
    Array.isArray(messages) &&
    !messages.some((m) => (m as { role?: string } | null)?.role === 'system')
  ) {
    out.messages = [{ role: 'system', content: model.system }, ...messages];
  }
  return out;
}

/** Refuses what llama-server would fail on or fetch: images for a model without a projector, remote URLs. */
function checkMedia(deps: ApiDeps, model: CatalogModel, body: Record<string, unknown>): void {
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
}

export interface Passthrough {
  model: CatalogModel;
  /** llama-server's path for it. */
  path: string;
  body: Record<string, unknown>;
  /** Which child of the model answers (see ModelPlans.schedulable). */
  purpose?: Purpose | undefined;
}

/**
 * Forwards a request to a child of its model as it is (with the model's defaults and canonical name)
 * and pipes the answer back byte for byte: nothing is parsed or re-serialised per token, so streaming
 * costs about what talking to llama-server does.
 */
export async function passThrough(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  p: Passthrough,
): Promise<FastifyReply> {
  const { model, path } = p;
  checkMedia(deps, model, p.body);
  const signal = clientAbortSignal(reply);
  const call = { signal, requestId: request.id };
  const body = { ...withModelDefaults(model, p.body, path), model: model.name };
  const lease = { keepAliveMs: keepAliveMs(p.body.keep_alive), signal };
  return deps.scheduler.withLease(deps.schedulable(model, p.purpose), lease, async (client, info) => {
    deps.observe?.leased?.(request, model.name, info);
    const upstream = await client.forward({ path, body }, call);
    const type = upstream.headers['content-type'];
    const sse = String(type).includes('text/event-stream');
    const head = sse && path === '/v1/messages' ? messageStartFix(client, body, model.name, call) : undefined;
    const { out, done } = relay(upstream.body, sse ? streamErrorEvent(path) : undefined, head);
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
        (prompt, generated) => observe.usage?.(request, prompt, generated),
      );
    reply.code(upstream.status).send(out);
    await done;
    return reply;
  });
}
