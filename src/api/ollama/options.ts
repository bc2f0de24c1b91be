import { BadRequest } from '../../errors.js';
import { parseDuration } from '../../config/duration.js';
import type { Sampling } from '../../llama/client.js';

type NumericSampling = keyof Omit<Sampling, 'stop'>;

/** Ollama `options` that map one-to-one onto a sampling setting. */
const SAMPLING: Record<string, NumericSampling> = {
  num_predict: 'maxTokens',
  temperature: 'temperature',
  top_k: 'topK',
  top_p: 'topP',
  min_p: 'minP',
  typical_p: 'typicalP',
  seed: 'seed',
  repeat_penalty: 'repeatPenalty',
  repeat_last_n: 'repeatLastN',
  presence_penalty: 'presencePenalty',
  frequency_penalty: 'frequencyPenalty',
  mirostat: 'mirostat',
  mirostat_tau: 'mirostatTau',
  mirostat_eta: 'mirostatEta',
  num_keep: 'keep',
  tfs_z: 'tfsZ',
};

/** Options that only take effect when a process starts; num_ctx and num_gpu restart an idle model, the rest are ignored. */
const LOAD_TIME = new Set([
  'num_ctx',
  'num_batch',
  'num_gpu',
  'main_gpu',
  'num_thread',
  'use_mmap',
  'use_mlock',
  'low_vram',
  'numa',
  'vocab_only',
  'f16_kv',
  'logits_all',
  'embedding_only',
  'penalize_newline',
  'num_gqa',
  'rope_frequency_base',
  'rope_frequency_scale',
]);

/** Translates merged Ollama options into sampling settings, validating types as Ollama does. */
export function sampling(options: Record<string, unknown>): Sampling {
  const out: Sampling = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === null || value === undefined) continue;
    const target = SAMPLING[key];
    if (target) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new BadRequest(`invalid options: "${key}" must be a number, got ${JSON.stringify(value)}`);
      }
      out[target] = value;
    } else if (key === 'stop') {
      const stops = typeof value === 'string' ? [value] : value;
      if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string')) {
        throw new BadRequest('invalid options: "stop" must be a string or an array of strings');
      }
      out.stop = stops;
    } else if (LOAD_TIME.has(key)) {
      if ((key === 'num_ctx' || key === 'num_gpu') && typeof value !== 'number')
        throw new BadRequest(`invalid options: "${key}" must be a number`);
    }
    // Unknown options are ignored, as Ollama does.
  }
  // Ollama: -1 = unlimited, -2 = fill the context; anything lower is taken as unlimited.
  if (out.maxTokens !== undefined && out.maxTokens < -2) out.maxTokens = -1;
  return out;
}

/** Request options over model defaults (config `options` of the model). */
export function mergeOptions(modelDefaults: Record<string, unknown>, request: unknown): Record<string, unknown> {
  if (request !== undefined && request !== null && (typeof request !== 'object' || Array.isArray(request))) {
    throw new BadRequest('invalid options: must be an object');
  }
  return { ...modelDefaults, ...(request as Record<string, unknown> | undefined) };
}

export function numCtx(options: Record<string, unknown>): number | undefined {
  const v = options.num_ctx;
  return typeof v === 'number' && v > 0 ? Math.floor(v) : undefined;
}

/** num_gpu: layers on the GPU, a load-time option (-ngl); negative is Ollama's "decide for me", i.e. unset. */
export function numGpu(options: Record<string, unknown>): number | undefined {
  const v = options.num_gpu;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

/** The options that decide how a model's process starts, for the scheduler's acquire. */
export function loadOptions(options: Record<string, unknown>): {
  numCtx: number | undefined;
  numGpu: number | undefined;
} {
  return { numCtx: numCtx(options), numGpu: numGpu(options) };
}

/** keep_alive from a request: a duration string, a number of seconds, negative = forever. Returns ms. */
export function keepAliveMs(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' && typeof value !== 'number')
    throw new BadRequest('invalid keep_alive: must be a duration string like "5m" or a number of seconds');
  try {
    return parseDuration(value);
  } catch (err) {
    throw new BadRequest(`invalid keep_alive: ${(err as Error).message}`);
  }
}
