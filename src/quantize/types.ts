import { BadRequest } from '../errors.js';

/**
 * The types `quantize` accepts: Ollama's (F32, F16, BF16, Q8_0, Q4_K_S, Q4_K_M) and the other
 * llama.cpp types llama-quantize produces without an importance matrix. IQ types are left out: on a
 * real model llama-quantize refuses most of them without one. Bits per weight (llama.cpp's figures for
 * a 7-8B model) estimate the output's size for the disk check.
 */
const BITS_PER_WEIGHT: Record<string, number> = {
  F32: 32,
  F16: 16,
  BF16: 16,
  Q8_0: 8.5,
  Q6_K: 6.6,
  Q5_K_M: 5.7,
  Q5_K_S: 5.6,
  Q5_1: 6,
  Q5_0: 5.5,
  Q4_K_M: 4.9,
  Q4_K_S: 4.6,
  Q4_1: 5,
  Q4_0: 4.5,
  Q3_K_L: 4.3,
  Q3_K_M: 3.9,
  Q3_K_S: 3.5,
  Q2_K: 3.4,
};

/** Short names llama.cpp and Ollama accept for the medium K-quant of a size. */
const ALIASES: Record<string, string> = { Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M', Q3_K: 'Q3_K_M' };

/** What Ollama quantizes from; anything else is quantized already. */
const SOURCES = ['F16', 'BF16', 'F32'];

export interface QuantizeType {
  /** As asked, upper-cased: what the progress line names (`quantizing F16 model to Q4_K`). */
  requested: string;
  /** llama.cpp's name for it, passed to llama-quantize and compared with the source's file type. */
  type: string;
}

/** Ollama's ParseFileType: case-insensitive, and its wording for a type it does not know. */
export function parseQuantizeType(raw: string): QuantizeType {
  const requested = raw.toUpperCase();
  const type = ALIASES[requested] ?? requested;
  if (!(type in BITS_PER_WEIGHT))
    throw new BadRequest(
      `unsupported quantization type ${requested} - supported types are ${Object.keys(BITS_PER_WEIGHT).join(', ')}`,
    );
  return { requested, type };
}

/** Refuses a source that is quantized already, in Ollama's words (requantizing loses quality). */
export function assertQuantizable(sourceType: string): void {
  if (!SOURCES.includes(sourceType.toUpperCase()))
    throw new BadRequest('quantization is only supported for F16, BF16 and F32 models');
}

/** Roughly how many bytes a `sourceBytes` file of `sourceType` becomes as `type`. */
export function estimatedBytes(sourceBytes: number, sourceType: string, type: string): number {
  const from = BITS_PER_WEIGHT[sourceType.toUpperCase()] ?? 32;
  const to = BITS_PER_WEIGHT[type] ?? 32;
  // Norms and biases stay F32 and the header is copied: a margin over the plain ratio.
  return Math.ceil((sourceBytes * to) / from) + 16 * 1024 * 1024;
}
