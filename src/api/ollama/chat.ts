import type { FastifyInstance } from 'fastify';
import { BadRequest } from '../../errors.js';
import type { ToolCall } from '../../upstream/generation.js';
import type { ApiDeps } from '../deps.js';
import { upstreamHeaders } from '../request-id.js';
import { requireModel } from '../model-lookup.js';
import { startChat, thinkParams } from './chat-start.js';
import { keepAliveMs, loadOptions, mergeOptions, samplingParams } from './options.js';
import { serveGeneration, type OllamaShape } from './respond.js';
import { ChatBody, type Message } from './schemas.js';
import { loadOrUnload } from './load-unload.js';
import { conversation, renderedPrompt, startRendered } from './prompt-path.js';

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

/** Ollama messages → OpenAI messages for llama-server's chat endpoint. */
export function openAiMessages(messages: Message[], vision: boolean): Record<string, unknown>[] {
  return messages.map((m, i) => {
    const out: Record<string, unknown> = { role: m.role, content: m.content ?? '' };
    if (m.images?.length) {
      if (!vision) throw new BadRequest(`messages[${i}]: this model does not support images (no mmproj configured)`);
      out.content = [
        { type: 'text', text: m.content ?? '' },
        ...m.images.map((img) => ({
          type: 'image_url',
          image_url: { url: img.startsWith('data:') ? img : `data:image/png;base64,${img}` },
        })),
      ];
    }
    if (m.tool_calls?.length) {
      out.tool_calls = m.tool_calls.map((tc, j) => ({
        id: `call_${i}_${j}`,
        type: 'function',
        function: {
          name: tc.function.name,
          arguments:
            typeof tc.function.arguments === 'string'
              ? tc.function.arguments
              : JSON.stringify(tc.function.arguments ?? {}),
        },
      }));
    }
    if (m.role === 'tool' && m.tool_name) out.name = m.tool_name;
    if (m.thinking && m.role === 'assistant') out.reasoning_content = m.thinking;
    return out;
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
    const options = mergeOptions(model.options, body.options);
    const withSystem = conversation(model, messages);
    const rendered = renderedPrompt(model, withSystem, body.tools, body.think);
    const payload: Record<string, unknown> = {
      messages: openAiMessages(withSystem, Boolean(model.mmproj)),
      ...samplingParams(options),
      ...thinkParams(body.think),
      cache_prompt: true,
    };
    if (typeof payload.n_predict === 'number') payload.max_tokens = payload.n_predict;
    if (body.tools?.length) payload.tools = body.tools;
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
      stream: body.stream !== false,
      keepAliveMs: keepAlive,
      ...loadOptions(options),
      shape,
      start:
        rendered === undefined
          ? startChat(payload, body.format, body.think, upstreamHeaders(request))
          : startRendered(rendered, samplingParams(options), body.format, upstreamHeaders(request)),
    });
  });
}
