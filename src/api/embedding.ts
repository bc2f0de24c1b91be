import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CatalogModel } from '../catalog/catalog.js';
import { BadRequest } from '../errors.js';
import type { CallOptions, LlamaClient } from '../llama/client.js';
import { refuseReranker } from './capability.js';
import { clientAbortSignal } from './client-abort.js';
import type { ApiDeps } from './deps.js';
import { textLimitBytes } from './prompt-cap.js';

export interface EmbedJob {
  model: CatalogModel;
  /** Texts, or (OpenAI) token ids. */
  inputs: (string | number[])[];
  /** Cut inputs longer than a slot's context to fit it; refuse them with 400 otherwise. */
  truncate: boolean;
  keepAliveMs: number | undefined;
  numCtx?: number | undefined;
  numGpu?: number | undefined;
}

export interface EmbedRun {
  vectors: number[][];
  promptTokens: number;
  loadDurationMs: number;
}

/**
 * Embeds each input through one lease of the model's embedding child: its own for an embedding model,
 * else one started for embeddings from the same GGUF, as Ollama embeds with any model. A reranker
 * cannot embed.
 */
export async function embedInputs(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  job: EmbedJob,
): Promise<EmbedRun> {
  refuseReranker(job.model, 'embed');
  const signal = clientAbortSignal(reply);
  const call = { signal, requestId: request.id };
  const lease = { keepAliveMs: job.keepAliveMs, numCtx: job.numCtx, numGpu: job.numGpu, signal };
  const child = deps.schedulable(job.model, 'embeddings');
  return deps.scheduler.withLease(child, lease, async (client, info) => {
    deps.observe?.leased?.(request, job.model.name, info);
    const prepared = await fitInputs(client, job, call);
    if (prepared.length === 0) return { vectors: [], promptTokens: 0, loadDurationMs: info.loadDurationMs };
    const result = await client.embed(prepared, call);
    deps.observe?.usage?.(request, result.promptTokens, 0);
    return { ...result, loadDurationMs: info.loadDurationMs };
  });
}

/**
 * Each input as it is when it fits a slot's context (less one position for BOS), else cut to fit as
 * token ids, or refused. Only texts that might not fit are tokenized, and one longer than the context
 * could ever hold is cut (or refused) before that, so its length costs nothing.
 */
async function fitInputs(client: LlamaClient, job: EmbedJob, call: CallOptions): Promise<(string | number[])[]> {
  const ctx = await client.slotContext(call);
  const limit = ctx - 1;
  const maxBytes = textLimitBytes(job.model, ctx);
  const prepared: (string | number[])[] = [];
  for (const [i, input] of job.inputs.entries()) {
    const refuse = (length: string): never => {
      throw new BadRequest(
        `input${job.inputs.length > 1 ? `[${i}]` : ''} length (${length}) exceeds the context length (${ctx}) and "truncate" is false`,
      );
    };
    if (typeof input !== 'string') {
      if (input.length <= limit) prepared.push(input);
      else if (job.truncate) prepared.push(input.slice(0, limit));
      else refuse(`${input.length} tokens`);
      continue;
    }
    const bytes = Buffer.byteLength(input);
    // A token covers at least a byte (SentencePiece may add one ▁ of its own): short texts fit unread.
    if (bytes + 2 <= limit) {
      prepared.push(input);
      continue;
    }
    const long = bytes > maxBytes;
    if (long && !job.truncate) refuse(`${bytes} bytes`);
    const text = long ? cutToBytes(input, maxBytes) : input;
    const tokens = await client.tokenize(text, { addSpecial: false }, call);
    if (tokens.length <= limit && !long) prepared.push(text);
    else if (tokens.length <= limit) prepared.push(tokens);
    else if (job.truncate) prepared.push(tokens.slice(0, limit));
    else refuse(`${tokens.length} tokens`);
  }
  return prepared;
}

/** The longest prefix of `text` within `bytes` UTF-8 bytes, not splitting a character. */
function cutToBytes(text: string, bytes: number): string {
  const buf = Buffer.from(text.slice(0, bytes));
  let end = Math.min(bytes, buf.length);
  // Back up over continuation bytes (10xxxxxx) to the start of the character that was cut.
  while (end > 0 && end < buf.length && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.toString('utf8', 0, end);
}

/** Ollama and OpenAI vectors are unit length; `dimensions` keeps the first n and normalises again. */
export function normalize(v: number[], dimensions?: number): number[] {
  const cut = dimensions && dimensions < v.length ? v.slice(0, dimensions) : v;
  const norm = Math.sqrt(cut.reduce((s, x) => s + x * x, 0));
  return norm > 0 ? cut.map((x) => x / norm) : cut;
}

/** `dimensions` as Ollama and OpenAI define it; 0 or absent means all of them. */
export function withDimensions(model: CatalogModel, vectors: number[][], dimensions: number | undefined): number[][] {
  const size = vectors[0]?.length ?? 0;
  if (dimensions && size && dimensions > size)
    throw new BadRequest(
      `invalid value for "dimensions": model "${model.name}" makes ${size}-dimensional embeddings, so at most ${size}`,
    );
  return vectors.map((v) => normalize(v, dimensions));
}
