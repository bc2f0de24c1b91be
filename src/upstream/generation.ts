import type { UpstreamPool } from './pool.js';
import { UpstreamError } from '../errors.js';
import { postJson, readText } from './client.js';
import { sseData } from './sse.js';

export interface LlamaTimings {
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
  cache_n?: number;
}

export interface ToolCall {
  id?: string;
  name: string;
  /** Raw JSON text of the arguments as the model produced it. */
  arguments: string;
}

/** One step of a generation, independent of which API the client speaks. */
export type GenerationEvent =
  | { kind: 'delta'; content: string; thinking?: undefined }
  | { kind: 'delta'; content?: undefined; thinking: string }
  | {
      kind: 'done';
      reason: 'stop' | 'length';
      timings: LlamaTimings | undefined;
      toolCalls: ToolCall[];
      tokens?: number[];
      /** The generated text, set only when `tokens` lacks some of its ids (see streamCompletion). */
      answer?: string;
    };

interface CompletionChunk {
  content?: string;
  stop?: boolean;
  stop_type?: string;
  timings?: LlamaTimings;
  tokens?: number[];
  tokens_predicted?: number;
  error?: unknown;
}

function upstreamFailure(error: unknown): UpstreamError {
  const e = error as { message?: string } | string;
  return new UpstreamError(typeof e === 'string' ? e : (e?.message ?? JSON.stringify(error)));
}

/**
 * Streams llama-server `/completion` (raw prompt) — or `/infill`, which answers the same way — as generation events.
 * With `return_tokens`, the final event carries the generated token ids. llama-server's stream holds
 * back a token that ends inside a UTF-8 character and sends the piece once it is whole, with only the
 * last token's id (v0.5.0, server-context.cpp process_token), so the ids can fall short of
 * `tokens_predicted`; the final event then also carries the generated text as `answer`.
 */
export async function* streamCompletion(
  pool: UpstreamPool,
  payload: Record<string, unknown>,
  signal: AbortSignal,
  headers?: Record<string, string>,
  path: '/completion' | '/infill' = '/completion',
): AsyncGenerator<GenerationEvent> {
  const res = await postJson(pool, path, { ...payload, stream: true }, signal, headers);
  const wantTokens = Boolean(payload.return_tokens);
  const tokens: number[] = [];
  let text = '';
  for await (const data of sseData(res.body)) {
    const chunk = JSON.parse(data) as CompletionChunk;
    if (chunk.error !== undefined) throw upstreamFailure(chunk.error);
    if (wantTokens && chunk.tokens) tokens.push(...chunk.tokens);
    if (chunk.content) {
      if (wantTokens) text += chunk.content;
      yield { kind: 'delta', content: chunk.content };
    }
    if (chunk.stop) {
      const short = wantTokens && tokens.length < (chunk.tokens_predicted ?? 0);
      yield {
        kind: 'done',
        reason: chunk.stop_type === 'limit' ? 'length' : 'stop',
        timings: chunk.timings,
        toolCalls: [],
        tokens,
        ...(short ? { answer: text } : {}),
      };
      return;
    }
  }
  throw new UpstreamError('llama-server closed the stream before the generation finished');
}

interface ChatChunk {
  choices?: {
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    finish_reason?: string | null;
  }[];
  timings?: LlamaTimings;
  error?: unknown;
}

/**
 * Streams llama-server `/v1/chat/completions` (chat template applied by llama-server) as generation events.
 * Non-streamed Ollama requests are served from this stream too, although one whole answer would cost
 * less: llama-server checks a non-streamed request's connection only after a second in which no result
 * arrived for any request, so while other generations run, one whose client left would go on to its
 * end. A stream stops at the next token after its connection closes.
 */
export async function* streamChat(
  pool: UpstreamPool,
  payload: Record<string, unknown>,
  signal: AbortSignal,
  headers?: Record<string, string>,
): AsyncGenerator<GenerationEvent> {
  const res = await postJson(pool, '/v1/chat/completions', { ...payload, stream: true }, signal, headers);
  const calls: ToolCall[] = [];
  let finish: string | undefined;
  let timings: LlamaTimings | undefined;
  for await (const data of sseData(res.body)) {
    if (data === '[DONE]') break;
    const chunk = JSON.parse(data) as ChatChunk;
    if (chunk.error !== undefined) throw upstreamFailure(chunk.error);
    if (chunk.timings) timings = chunk.timings;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const delta = choice.delta;
    if (delta?.reasoning_content) yield { kind: 'delta', thinking: delta.reasoning_content };
    if (delta?.content) yield { kind: 'delta', content: delta.content };
    for (const tc of delta?.tool_calls ?? []) {
      const i = tc.index ?? calls.length;
      const call = (calls[i] ??= { name: '', arguments: '' });
      if (tc.id) call.id = tc.id;
      if (tc.function?.name) call.name += tc.function.name;
      if (tc.function?.arguments) call.arguments += tc.function.arguments;
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  if (finish === undefined) throw new UpstreamError('llama-server closed the stream before the generation finished');
  yield { kind: 'done', reason: finish === 'length' ? 'length' : 'stop', timings, toolCalls: calls.filter(Boolean) };
}

/** The model's own chat template applied by llama-server, as prompt text. */
export async function applyTemplate(
  pool: UpstreamPool,
  payload: Record<string, unknown>,
  signal: AbortSignal,
): Promise<string> {
  const res = await postJson(pool, '/apply-template', payload, signal);
  return (JSON.parse(await readText(res.body)) as { prompt: string }).prompt;
}

export async function tokenizeText(
  pool: UpstreamPool,
  text: string,
  addSpecial: boolean,
  signal: AbortSignal,
): Promise<number[]> {
  const res = await postJson(pool, '/tokenize', { content: text, add_special: addSpecial }, signal);
  return (JSON.parse(await readText(res.body)) as { tokens: number[] }).tokens;
}
