import type { FastifyInstance } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
import type { CallOptions, GenerationEvent, LlamaClient, OutputFormat, Sampling } from '../../llama/client.js';
import { refuseReranker, requireFim } from '../capability.js';
import type { ApiDeps } from '../deps.js';
import { textBytes } from '../prompt-cap.js';
import { requireModel } from '../model-lookup.js';
import { chatMessages } from './chat.js';
import { outputFormat } from './format.js';
import { looksLikeJinja, renderOllamaPrompt, requestTemplateError } from './go-template.js';
import { loadOrUnload } from './load-unload.js';
import { keepAliveMs, loadOptions, mergeOptions, sampling } from './options.js';
import { renderedPrompt } from './prompt-path.js';
import { serveGeneration, type OllamaShape } from './respond.js';
import { GenerateBody, type Message } from './schemas.js';

/**
 * Runs a /completion and reports `context` as Ollama does: the given context, then the ids of the
 * prompt text and of the generated tokens, so a client can send it back to continue. When
 * llama-server's stream left some generated ids out, the prompt text and the answer are tokenized
 * together instead: the answer alone would gain the leading space SentencePiece vocabularies put
 * before a text's first word.
 */
async function* withContext(
  context: number[],
  text: string,
  tokenize: (text: string) => Promise<number[]>,
  run: AsyncGenerator<GenerationEvent>,
): AsyncGenerator<GenerationEvent> {
  for await (const ev of run) {
    if (ev.kind === 'done') {
      const ids =
        ev.answer === undefined ? [...(await tokenize(text)), ...(ev.tokens ?? [])] : await tokenize(text + ev.answer);
      yield { ...ev, tokens: [...context, ...ids] };
    } else yield ev;
  }
}

interface PromptSource {
  model: CatalogModel;
  body: GenerateBody;
  system: string | undefined;
  sampling: Sampling;
  format: OutputFormat | undefined;
}

/**
 * What a generate request says, as Ollama turns it into messages: the system prompt and, unless it
 * continues a `context`, the messages the model was created with (MESSAGE), then the prompt.
 */
function promptTurn(model: CatalogModel, system: string | undefined, body: GenerateBody): Message[] {
  const fresh = !body.context?.length;
  return [
    ...(system && fresh ? [{ role: 'system' as const, content: system }] : []),
    ...(fresh ? ((model.messages ?? []) as Message[]) : []),
    { role: 'user' as const, content: body.prompt ?? '', ...(body.images?.length ? { images: body.images } : {}) },
  ];
}

/**
 * The prompt as the model sees it (raw, an Ollama template, or the model's own template), completed
 * with `context` reported (see withContext).
 */
async function* complete(client: LlamaClient, p: PromptSource, call: CallOptions): AsyncGenerator<GenerationEvent> {
  const { body, system } = p;
  const context = body.context ?? [];
  const turn = promptTurn(p.model, system, body);
  let text: string;
  if (body.raw) text = body.prompt ?? '';
  else if (body.template !== undefined)
    text = renderOllamaPrompt(body.template, { messages: turn, think: body.think }, requestTemplateError);
  else if (p.model.goTemplate) text = renderedPrompt(p.model, turn, undefined, body.think)!;
  else text = await client.applyTemplate(chatMessages(turn, p.model), {}, call);
  // A continuation appends to the given token ids; llama-server takes tokens followed by text.
  const prompt = context.length ? [...context, text] : text;
  yield* withContext(
    context,
    text,
    (t) => client.tokenize(t, { addSpecial: !context.length }, call),
    client.complete({ prompt, sampling: p.sampling, format: p.format, returnTokens: true }, call),
  );
}

export function registerGenerate(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: GenerateBody }>('/api/generate', { schema: { body: GenerateBody } }, async (request, reply) => {
    const body = request.body;
    const model = requireModel(deps, body.model, request);
    const keepAlive = keepAliveMs(body.keep_alive);
    const name = model.name;
    if (!body.prompt && !body.images?.length && !body.context?.length && !body.suffix) {
      const reason = await loadOrUnload(deps, model, keepAlive);
      return { model: name, created_at: new Date().toISOString(), response: '', done: true, done_reason: reason };
    }
    // A reranker loads and unloads as above (`ollama stop`), but does not generate.
    refuseReranker(model, 'generate text');
    if (body.suffix) requireFim(model);
    // A raw prompt has no place the model's template would put images in: refused, never dropped.
    if (body.images?.length && body.raw)
      throw new BadRequest(
        '"images" cannot be combined with "raw": send the prompt without raw so the template places them',
      );
    if (body.images?.length && !model.mmproj)
      throw new BadRequest(`model "${name}" does not support images (no mmproj configured)`);
    if (body.images?.length && model.goTemplate) renderedPrompt(model, [{ role: 'user', images: body.images }]);
    if (body.template !== undefined && looksLikeJinja(body.template)) {
      throw new BadRequest(
        'invalid value for "template": a per-request Jinja template is not supported; create a model with it (/api/create with "template") or send an Ollama-style template',
      );
    }
    const options = mergeOptions(model.options, body.options);
    const settings = sampling(options);
    const shape: OllamaShape = {
      delta: (ev) =>
        ev.thinking !== undefined
          ? { model: name, created_at: new Date().toISOString(), response: '', thinking: ev.thinking, done: false }
          : { model: name, created_at: new Date().toISOString(), response: ev.content, done: false },
      final: (done, stats, agg) => {
        const out: Record<string, unknown> = {
          model: name,
          created_at: new Date().toISOString(),
          response: agg?.content ?? '',
        };
        if (agg?.thinking) out.thinking = agg.thinking;
        out.done = true;
        out.done_reason = done.reason;
        if (done.tokens?.length) out.context = done.tokens;
        return { ...out, ...stats };
      },
    };
    const common = {
      model,
      promptBytes: textBytes([body.prompt, body.system, body.suffix, body.template]),
      stream: body.stream !== false,
      keepAliveMs: keepAlive,
      ...loadOptions(options),
      shape,
    };
    const system = body.system ?? model.system;
    const format = outputFormat(body.format);

    if (body.suffix) {
      const infill = { prefix: body.prompt ?? '', suffix: body.suffix, sampling: settings, format, returnTokens: true };
      return serveGeneration(request, reply, deps, { ...common, start: (client, call) => client.infill(infill, call) });
    }

    // Thinking is parsed, and images are attached, only by llama-server's chat endpoint.
    if (!body.raw && !model.goTemplate && (body.think !== undefined || body.images?.length)) {
      if (body.context?.length) throw new BadRequest('"context" cannot be combined with "think" or "images"');
      const messages = chatMessages(promptTurn(model, system, body), model);
      const chat = { messages, sampling: settings, think: body.think, format };
      return serveGeneration(request, reply, deps, { ...common, start: (client, call) => client.chat(chat, call) });
    }

    const prompt: PromptSource = { model, body, system, sampling: settings, format };
    return serveGeneration(request, reply, deps, {
      ...common,
      start: (client, call) => complete(client, prompt, call),
    });
  });
}
