import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest, errorMessage } from '../../errors.js';
import type { DoneEvent, GenerationEvent, InfillRequest } from '../../llama/client.js';
import { requireFim } from '../capability.js';
import { clientAbortSignal } from '../client-abort.js';
import type { ApiDeps } from '../deps.js';
import { keepAliveMs, mergeOptions, sampling } from '../ollama/options.js';

/** OpenAI's completion fields and the Ollama option each one is. */
const OPTION_OF: Record<string, string> = {
  max_tokens: 'num_predict',
  temperature: 'temperature',
  top_p: 'top_p',
  seed: 'seed',
  presence_penalty: 'presence_penalty',
  frequency_penalty: 'frequency_penalty',
  stop: 'stop',
};

/** The one prompt of a completion with a suffix: a string, or a list holding one. */
function prefixOf(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') return prompt[0];
  throw new BadRequest('invalid value for "prompt": with "suffix" it must be one string');
}

function infillRequest(model: CatalogModel, body: Record<string, unknown>): InfillRequest {
  const options: Record<string, unknown> = {};
  for (const [field, option] of Object.entries(OPTION_OF))
    if (body[field] !== undefined && body[field] !== null) options[option] = body[field];
  return {
    prefix: prefixOf(body.prompt),
    suffix: String(body.suffix),
    sampling: sampling(mergeOptions(model.options, options)),
  };
}

interface Shape {
  id: string;
  created: number;
  model: string;
}

const choice = (text: string, finish: string | null) => ({ text, index: 0, logprobs: null, finish_reason: finish });
const usage = (done: DoneEvent) => {
  const prompt = (done.timings?.prompt_n ?? 0) + (done.timings?.cache_n ?? 0);
  const completion = done.timings?.predicted_n ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
};
const chunk = (s: Shape, choices: object[], extra: object = {}) => ({
  id: s.id,
  object: 'text_completion',
  created: s.created,
  model: s.model,
  choices,
  ...extra,
});

/**
 * `/v1/completions` with a `suffix`: llama-server's completions endpoint ignores the suffix, so the
 * request goes to its /infill (the model's FIM tokens around prefix and suffix) and the answer comes
 * back in OpenAI's completion shape, streamed as server-sent events or whole.
 */
export async function completeWithSuffix(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  model: CatalogModel,
  body: Record<string, unknown>,
): Promise<FastifyReply> {
  requireFim(model);
  const infill = infillRequest(model, body);
  const signal = clientAbortSignal(reply);
  const call = { signal, requestId: request.id };
  const lease = { keepAliveMs: keepAliveMs(body.keep_alive), signal };
  const shape: Shape = {
    id: `cmpl-${randomBytes(12).toString('hex')}`,
    created: Math.floor(Date.now() / 1000),
    model: model.name,
  };
  return deps.scheduler.withLease(deps.schedulable(model), lease, async (client, info) => {
    deps.observe?.leased?.(request, model.name, info);
    const events = client.infill(infill, call);
    // The first event before answering: a refusal before it is still a plain error response.
    const first = await events.next();
    deps.observe?.firstToken?.(request);
    const finish = (done: DoneEvent): void =>
      deps.observe?.usage?.(request, done.timings?.prompt_n ?? 0, done.timings?.predicted_n ?? 0);
    if (body.stream !== true) return reply.send(await whole(first, events, shape, finish));
    const out = new Readable({ read() {} });
    reply.header('content-type', 'text/event-stream').header('cache-control', 'no-cache').send(out);
    await stream(first, events, out, shape, finish);
    return reply;
  });
}

async function whole(
  first: IteratorResult<GenerationEvent>,
  events: AsyncGenerator<GenerationEvent>,
  shape: Shape,
  finish: (done: DoneEvent) => void,
): Promise<object> {
  let text = '';
  for (let step = first; !step.done; step = await events.next()) {
    const ev = step.value;
    if (ev.kind === 'delta') text += ev.content ?? '';
    else {
      finish(ev);
      return chunk(shape, [choice(text, ev.reason)], { usage: usage(ev) });
    }
  }
  throw new Error('generation ended without a final event');
}

async function stream(
  first: IteratorResult<GenerationEvent>,
  events: AsyncGenerator<GenerationEvent>,
  out: Readable,
  shape: Shape,
  finish: (done: DoneEvent) => void,
): Promise<void> {
  const send = (data: object | string): void => {
    if (!out.destroyed) out.push(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  };
  try {
    for (let step = first; !step.done; step = await events.next()) {
      const ev = step.value;
      if (ev.kind === 'delta') {
        if (ev.content) send(chunk(shape, [choice(ev.content, null)]));
        continue;
      }
      finish(ev);
      send(chunk(shape, [choice('', ev.reason)], { usage: usage(ev) }));
      send('[DONE]');
    }
  } catch (err) {
    send({
      error: { message: `llama-server stopped mid-answer: ${errorMessage(err)}`, type: 'server_error', code: null },
    });
  } finally {
    if (!out.destroyed) out.push(null);
  }
}
