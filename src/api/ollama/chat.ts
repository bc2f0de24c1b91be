import type { FastifyInstance } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { BadRequest } from '../../errors.js';
import type { ChatMessage, ChatRequest, ToolCall } from '../../llama/client.js';
import { refuseReranker } from '../capability.js';
import type { ApiDeps } from '../deps.js';
import { textBytes } from '../prompt-cap.js';
import { requireModel } from '../model-lookup.js';
import { outputFormat } from './format.js';
import { loadOrUnload } from './load-unload.js';
import { keepAliveMs, loadOptions, mergeOptions, sampling } from './options.js';
import { conversation, renderedPrompt } from './prompt-path.js';
import { serveGeneration, type OllamaShape } from './respond.js';
import { ChatBody, type Message } from './schemas.js';

/** Ollama tool-call arguments are an object; llama-server's are JSON text. */
export function ollamaToolCalls(calls: ToolCall[]): { function: { name: string; arguments: unknown } }[] {
  return calls.map((c) => {
    let args: unknown = {};
    try {
      args = c.arguments ? JSON.parse(c.arguments) : {};
    } catch {
      args = c.arguments;
    }
    return { function: { name: c.name, arguments: args } };
  });
}

/** Ollama messages as Corral's chat messages; images only for a model with a projector. */
export function chatMessages(messages: Message[], model: CatalogModel): ChatMessage[] {
  return messages.map((m, i) => {
    if (m.images?.length && !model.mmproj)
      throw new BadRequest(`messages[${i}]: this model does not support images (no mmproj configured)`);
    return {
      role: m.role,
      content: m.content ?? '',
      images: m.images,
      toolCalls: m.tool_calls?.map((tc) => ({ name: tc.function.name, arguments: tc.function.arguments })),
      toolName: m.tool_name,
      thinking: m.thinking,
    };
  });
}

export function registerChat(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: ChatBody }>('/api/chat', { schema: { body: ChatBody } }, async (request, reply) => {
    const body = request.body;
    const model = requireModel(deps, body.model, request);
    const keepAlive = keepAliveMs(body.keep_alive);
    const name = model.name;
    const messages = body.messages ?? [];
    if (messages.length === 0) {
      const reason = await loadOrUnload(deps, model, keepAlive);
      return {
        model: name,
        created_at: new Date().toISOString(),
        message: { role: 'assistant', content: '' },
        done_reason: reason,
        done: true,
      };
    }
    refuseReranker(model, 'generate text');
    const options = mergeOptions(model.options, body.options);
    const withSystem = conversation(model, messages);
    const rendered = renderedPrompt(model, withSystem, body.tools, body.think);
    const chat: ChatRequest = {
      messages: chatMessages(withSystem, model),
      sampling: sampling(options),
      tools: body.tools?.length ? body.tools : undefined,
      think: body.think,
      format: outputFormat(body.format),
    };
    const shape: OllamaShape = {
      delta: (ev) => ({
        model: name,
        created_at: new Date().toISOString(),
        message:
          ev.thinking !== undefined
            ? { role: 'assistant', content: '', thinking: ev.thinking }
            : { role: 'assistant', content: ev.content },
        done: false,
      }),
      final: (done, stats, agg) => {
        const message: Record<string, unknown> = { role: 'assistant', content: agg?.content ?? '' };
        if (agg?.thinking) message.thinking = agg.thinking;
        if (done.toolCalls.length) message.tool_calls = ollamaToolCalls(done.toolCalls);
        return {
          model: name,
          created_at: new Date().toISOString(),
          message,
          done_reason: done.reason,
          done: true,
          ...stats,
        };
      },
    };
    return serveGeneration(request, reply, deps, {
      model,
      promptBytes: textBytes(withSystem) + textBytes(body.tools),
      stream: body.stream !== false,
      keepAliveMs: keepAlive,
      ...loadOptions(options),
      shape,
      start:
        rendered === undefined
          ? (client, call) => client.chat(chat, call)
          : (client, call) => client.complete({ prompt: rendered, sampling: chat.sampling, format: chat.format }, call),
    });
  });
}
