import { type CatalogModel, poolingOf, reranks } from '../catalog/catalog.js';
import { BadRequest } from '../errors.js';

/** Fill-in-the-middle needs the vocabulary's FIM tokens (Ollama's "insert" capability). */
export function requireFim(model: CatalogModel, field = '"suffix"'): void {
  if (!model.gguf.hasFim)
    throw new BadRequest(
      `model "${model.name}" does not support insert: its GGUF has no fill-in-the-middle tokens, so ${field} cannot be used`,
    );
}

export function requireReranker(model: CatalogModel): void {
  if (!reranks(model))
    throw new BadRequest(
      `model "${model.name}" cannot rerank: its GGUF's pooling type is ${describePooling(model)}, not "rank" ` +
        '(a reranker such as bge-reranker or Qwen3-Reranker has it)',
    );
}

/** A reranker's child scores (query, document) pairs; it neither embeds nor generates text. */
export function refuseReranker(model: CatalogModel, what: string): void {
  if (reranks(model))
    throw new BadRequest(
      `model "${model.name}" is a reranker: it ranks documents (POST /v1/rerank) and cannot ${what}`,
    );
}

function describePooling(model: CatalogModel): string {
  const pooling = poolingOf(model.gguf);
  return pooling === undefined ? 'not set (a generative model)' : `"${pooling}"`;
}
