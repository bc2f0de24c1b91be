import type { LlamaTimings } from '../../upstream/generation.js';

/** Ollama's final-chunk statistics: nanosecond integers. */
export interface OllamaStats {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

const NS_PER_MS = 1e6;

export function ollamaStats(timings: LlamaTimings | undefined, startedAt: bigint, loadDurationMs: number): OllamaStats {
  return {
    total_duration: Number(process.hrtime.bigint() - startedAt),
    load_duration: Math.round(loadDurationMs * NS_PER_MS),
    // Ollama counts the whole prompt, cached part included; llama-server's prompt_n leaves the cache out,
    // so a repeated prompt (an image especially) would look like it was never read.
    prompt_eval_count: (timings?.prompt_n ?? 0) + (timings?.cache_n ?? 0),
    prompt_eval_duration: Math.round((timings?.prompt_ms ?? 0) * NS_PER_MS),
    eval_count: timings?.predicted_n ?? 0,
    eval_duration: Math.round((timings?.predicted_ms ?? 0) * NS_PER_MS),
  };
}
