import type { Runner } from '../../runner/runner.js';
import { applyTemplate, streamChat, streamCompletion, type GenerationEvent } from '../../upstream/generation.js';
import { completionSchema, responseFormat } from './format.js';

export function thinkParams(think: boolean | string | undefined): Record<string, unknown> {
  if (think === undefined) return {};
  const on = think !== false && think !== 'false';
  return { chat_template_kwargs: { enable_thinking: on }, reasoning_format: on ? 'deepseek' : 'none' };
}

/** The base64 payload of every image part, in prompt order: /completion matches them to media markers by position. */
function multimodalData(messages: unknown): string[] {
  const out: string[] = [];
  for (const m of (messages ?? []) as { content?: unknown }[]) {
    if (!Array.isArray(m.content)) continue;
    for (const p of m.content as { type?: string; image_url?: { url?: string } }[]) {
      const url = p.type === 'image_url' ? p.image_url?.url : undefined;
      if (url !== undefined) out.push(url.slice(url.indexOf(',') + 1));
    }
  }
  return out;
}

/**
 * Starts a chat generation of OpenAI `payload` on a runner. On its chat endpoint llama-server (v0.5.0)
 * prefixes the response grammar with the generation prompt and prefills it with that prompt's tokens;
 * SPM tokenizers that add a space after special tokens make the prefill fail ("Failed to initialize
 * samplers"). /completion constrains the output alone, so a `format` without tools or thinking applies
 * the template, then completes; images then travel as multimodal_data, since a templated prompt holds
 * only their markers.
 */
export function startChat(
  payload: Record<string, unknown>,
  format: unknown,
  think: boolean | string | undefined,
  headers: Record<string, string>,
): (runner: Runner, signal: AbortSignal) => AsyncGenerator<GenerationEvent> {
  const rf = responseFormat(format);
  if (!rf || payload.tools || think === true) {
    const body = rf ? { ...payload, response_format: rf } : payload;
    return (runner, signal) => streamChat(runner.pool!, body, signal, headers);
  }
  const { max_tokens: _mt, ...rest } = payload;
  const images = multimodalData(payload.messages);
  return (runner, signal) =>
    (async function* () {
      const text = await applyTemplate(runner.pool!, { messages: rest.messages, ...thinkParams(think) }, signal);
      const prompt = images.length ? { prompt_string: text, multimodal_data: images } : text;
      yield* streamCompletion(
        runner.pool!,
        { ...rest, messages: undefined, chat_template_kwargs: undefined, prompt, ...completionSchema(format) },
        signal,
        headers,
      );
    })();
}
