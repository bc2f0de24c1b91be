import { Agent, request } from 'undici';
import { now } from './stats.js';

/** How a benchmark speaks to one target: a base URL and an API dialect. */
export interface Endpoint {
  label: string;
  base: string;
  api: 'openai' | 'ollama';
}

export interface Outcome {
  ok: boolean;
  /** ms from send to the first generated token (streaming) or to the full answer (non-streaming). */
  ttftMs: number;
  totalMs: number;
  /** ms from first token to the end of the stream. */
  genMs: number;
  tokens: number;
  error?: string;
}

/** One keep-alive agent for the whole run, big enough for the 200-stream row: the load generator must not be the bottleneck. */
export const agent = new Agent({ connections: 512, keepAliveTimeout: 30_000, pipelining: 1 });

const PROMPT = 'Write a long story about a fox.';

function body(ep: Endpoint, model: string, maxTokens: number, stream: boolean, extra: object): string {
  if (ep.api === 'ollama') {
    return JSON.stringify({
      model,
      messages: [{ role: 'user', content: PROMPT }],
      stream,
      options: { num_predict: maxTokens, temperature: 0, seed: 1 },
      ...extra,
    });
  }
  return JSON.stringify({
    model,
    messages: [{ role: 'user', content: PROMPT }],
    stream,
    max_tokens: maxTokens,
    temperature: 0,
    seed: 1,
    ...extra,
  });
}

/** Generated-token count from the final event: llama-server `timings.predicted_n`, Ollama `eval_count`. */
function countTokens(text: string): number {
  const m =
    /"predicted_n":(\d+)/.exec(text) ?? /"eval_count":(\d+)/.exec(text) ?? /"completion_tokens":(\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** True once a chunk carries generated text (not the role-only preamble of an OpenAI stream). */
function hasToken(chunk: string, api: Endpoint['api']): boolean {
  return api === 'ollama'
    ? /"done":false/.test(chunk) || /"done":true/.test(chunk)
    : /"content":"[^"]/.test(chunk) || /"finish_reason":"/.test(chunk);
}

/** One chat request; never throws. */
export async function chat(
  ep: Endpoint,
  model: string,
  maxTokens: number,
  stream: boolean,
  extra: object = {},
  timeoutMs = 120_000,
): Promise<Outcome> {
  const path = ep.api === 'ollama' ? '/api/chat' : '/v1/chat/completions';
  const t0 = now();
  let first = NaN;
  let tail = '';
  try {
    const res = await request(`${ep.base}${path}`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: body(ep, model, maxTokens, stream, extra),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      if (Number.isNaN(first) && (!stream || hasToken(chunk, ep.api))) first = now();
      tail = (tail + chunk).slice(-4096);
    }
    const end = now();
    if (res.statusCode !== 200)
      return {
        ok: false,
        ttftMs: NaN,
        totalMs: end - t0,
        genMs: 0,
        tokens: 0,
        error: `HTTP ${res.statusCode}: ${tail.slice(0, 200)}`,
      };
    if (!stream) first = end;
    return { ok: true, ttftMs: first - t0, totalMs: end - t0, genMs: end - first, tokens: countTokens(tail) };
  } catch (err) {
    return { ok: false, ttftMs: NaN, totalMs: now() - t0, genMs: 0, tokens: 0, error: (err as Error).message };
  }
}

/** Requests per second of a cheap GET with `concurrency` loops for `durationMs`. */
export async function rps(
  url: string,
  concurrency: number,
  durationMs: number,
): Promise<{ rps: number; errors: number }> {
  const until = now() + durationMs;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (now() < until) {
        try {
          const res = await request(url, { dispatcher: agent });
          await res.body.dump();
          if (res.statusCode === 200) done++;
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rps: done / (durationMs / 1000), errors };
}

/** Polls a URL until it answers 200, as tightly as a client reasonably could (1 ms). */
export async function waitFor200(url: string, timeoutMs: number): Promise<number> {
  const t0 = now();
  while (now() - t0 < timeoutMs) {
    try {
      const res = await request(url, { dispatcher: agent, headersTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200) return now() - t0;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms`);
}
