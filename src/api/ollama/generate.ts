import type { FastifyInstance } from 'fastify';
import { streamChat, streamCompletion } from '../../upstream/generation.js';
import type { ApiDeps } from '../deps.js';
import { upstreamHeaders } from '../request-id.js';
import { requireModel } from '../model-lookup.js';
import { thinkParams } from './chat.js';
import { completionSchema, responseFormat } from './format.js';
import { loadOrUnload } from './load-unload.js';
import { keepAliveMs, mergeOptions, numCtx, samplingParams } from './options.js';
import { serveGeneration, type OllamaShape } from './respond.js';
import { GenerateBody } from './schemas.js';

export function registerGenerate(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: GenerateBody }>('/api/generate', { schema: { body: GenerateBody } }, async (request, reply) => {
    const body = request.body;
    const model = requireModel(deps, body.model, request);
    const keepAlive = keepAliveMs(body.keep_alive);
    const name = model.name;
    if (!body.prompt && !body.images?.length && !body.context?.length) {
      const reason = await loadOrUnload(deps, model, keepAlive);
      return { model: name, created_at: new Date().toISOString(), response: '', done: true, done_reason: reason };
    }
    const options = mergeOptions(model.options, body.options);
    const sampling = samplingParams(options);
    const shape: OllamaShape = {
      delta: (ev) =>
        ev.thinking !== undefined
          ? { model: name, created_at: new Date().toISOString(), response: '', thinking: ev.thinking, done: false }
          : { model: name, created_at: new Date().toISOString(), response: ev.content, done: false },
      final: (done, stats, agg) => {
        const out: Record<string, unknown> = { model: name, created_at: new Date().toISOString(), response: agg?.content ?? '' };
        if (agg?.thinking) out.thinking = agg.thinking;
        return { ...out, done: true, done_reason: done.reason, ...stats };
      },
    };
    const common = { model, stream: body.stream !== false, keepAliveMs: keepAlive, numCtx: numCtx(options), shape };

    if (body.raw || body.context?.length) {
      // Raw prompts (and continuations of a token context) skip the chat template: llama-server's
      // native /completion takes the text, or tokens followed by text, as is.
      const prompt = body.context?.length ? [...body.context, body.prompt ?? ''] : (body.prompt ?? '');
      const payload = { prompt, ...sampling, ...completionSchema(body.format), cache_prompt: true };
      return serveGeneration(request, reply, deps, { ...common, start: (runner, signal) => streamCompletion(runner.pool!, payload, signal, upstreamHeaders(request)) });
    }
    const system = body.system ?? model.system;
    const messages = [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: body.prompt ?? '' }];
    const payload: Record<string, unknown> = { messages, ...sampling, ...thinkParams(body.think), cache_prompt: true };
    if (typeof payload.n_predict === 'number') payload.max_tokens = payload.n_predict;
    const rf = responseFormat(body.format);
    if (rf) payload.response_format = rf;
    return serveGeneration(request, reply, deps, { ...common, start: (runner, signal) => streamChat(runner.pool!, payload, signal, upstreamHeaders(request)) });
  });
}
