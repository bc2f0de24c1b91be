import type { Readable } from 'node:stream';
import type { UpstreamPool } from './pool.js';
import { getJson, postJson, readText } from './client.js';

export interface EmbeddingResult {
  vectors: number[][];
  promptTokens: number;
}

/** Token ids of `text` as llama-server tokenises it (without BOS). */
export async function tokenize(pool: UpstreamPool, text: string, signal?: AbortSignal): Promise<number[]> {
  const res = await postJson(pool, '/tokenize', { content: text }, signal);
  return ((await readJson(res.body)) as { tokens: number[] }).tokens;
}

/** The per-slot context of a running llama-server. */
export async function slotContext(pool: UpstreamPool, signal?: AbortSignal): Promise<number> {
  const props = await getJson<{ default_generation_settings?: { n_ctx?: number } }>(pool, '/props', signal);
  return props.default_generation_settings?.n_ctx ?? 512;
}

/** llama-server `/v1/embeddings`; inputs are strings or token arrays. */
export async function embed(
  pool: UpstreamPool,
  input: (string | number[])[],
  signal?: AbortSignal,
): Promise<EmbeddingResult> {
  const res = await postJson(pool, '/v1/embeddings', { input }, signal);
  const body = (await readJson(res.body)) as {
    data: { index: number; embedding: number[] }[];
    usage?: { prompt_tokens?: number };
  };
  const vectors: number[][] = [];
  for (const d of body.data) vectors[d.index] = d.embedding;
  return { vectors, promptTokens: body.usage?.prompt_tokens ?? 0 };
}

async function readJson(body: Readable): Promise<unknown> {
  return JSON.parse(await readText(body)) as unknown;
}
