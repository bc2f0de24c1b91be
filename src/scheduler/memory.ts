/** What the estimate needs from a GGUF header. */
export interface MemoryShape {
  fileBytes: number;
  blockCount?: number | undefined;
  embeddingLength?: number | undefined;
  headCount?: number | undefined;
  headCountKv?: number | undefined;
}

/**
 * Estimated resident memory of a llama-server for a model: the weights (the GGUF file is mmapped
 * and read whole) plus an f16 KV cache for the total context, plus a fixed compute buffer.
 */
export function estimateMemory(shape: MemoryShape, totalCtx: number): number {
  const layers = shape.blockCount ?? 0;
  const embd = shape.embeddingLength ?? 0;
  const kvRatio = shape.headCount && shape.headCountKv ? shape.headCountKv / shape.headCount : 1;
  const kvBytes = 2 /* K and V */ * layers * totalCtx * embd * kvRatio * 2; /* f16 */
  const computeBuffer = 32 * 1024 * 1024;
  return Math.round(shape.fileBytes + kvBytes + computeBuffer);
}
