import type { Readable } from 'node:stream';
import { UpstreamError } from '../errors.js';
import type { GenerationEvent, LlamaTimings, ToolCall } from './client.js';

/**
 * Yields the `data:` payload of each Server-Sent Event as a string. llama-server sends one
 * `data: {...}` line per event, so this splits on newlines and skips comments and blank lines,
 * joining multi-line data per the SSE spec.
 */
export async function* sseData(body: Readable): AsyncGenerator<string> {
  let buffer = '';
  let data: string[] = [];
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      let line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
      } else if (line.startsWith('error:')) {
        // llama-server reports a mid-stream failure as an `error:` line.
        data.push(JSON.stringify({ error: safeJson(line.slice(6).trim()) }));
      }
    }
  }
  if (data.length) yield data.join('\n');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function upstreamFailure(error: unknown): UpstreamError {
  const e = error as { message?: string } | string;
  return new UpstreamError(typeof e === 'string' ? e : (e?.message ?? JSON.stringify(error)));
}

const cutShort = (): UpstreamError =>
  new UpstreamError('llama-server closed the stream before the generation finished');

interface CompletionChunk {
  content?: string;
  stop?: boolean;
  stop_type?: string;
  timings?: LlamaTimings;
  tokens?: number[];
  tokens_predicted?: number;
  error?: unknown;
}

/**
 * The events of a streamed `/completion` or `/infill` answer. With `return_tokens`, the final event
 * carries the generated token ids. llama-server's stream holds back a token that ends inside a UTF-8
 * character and sends the piece once it is whole, with only the last token's id (v0.5.0,
 * server-context.cpp process_token), so the ids can fall short of `tokens_predicted`; the final event
 * then also carries the generated text as `answer`.
 */
export async function* completionEvents(body: Readable, wantTokens: boolean): AsyncGenerator<GenerationEvent> {
  const tokens: number[] = [];
  let text = '';
  for await (const data of sseData(body)) {
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
  throw cutShort();
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

/** The events of a streamed `/v1/chat/completions` answer; tool-call deltas are assembled per index. */
export async function* chatEvents(body: Readable): AsyncGenerator<GenerationEvent> {
  const calls: ToolCall[] = [];
  let finish: string | undefined;
  let timings: LlamaTimings | undefined;
  for await (const data of sseData(body)) {
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
  if (finish === undefined) throw cutShort();
  yield { kind: 'done', reason: finish === 'length' ? 'length' : 'stop', timings, toolCalls: calls.filter(Boolean) };
}
