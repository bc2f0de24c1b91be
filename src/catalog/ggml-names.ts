/** Names llama.cpp and Ollama use for quantization enums, and Ollama's parameter-count format. */

/** llama_ftype from llama.h; gaps are retired values. */
const FILE_TYPES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  7: 'Q8_0',
  8: 'Q5_0',
  9: 'Q5_1',
  10: 'Q2_K',
  11: 'Q3_K_S',
  12: 'Q3_K_M',
  13: 'Q3_K_L',
  14: 'Q4_K_S',
  15: 'Q4_K_M',
  16: 'Q5_K_S',
  17: 'Q5_K_M',
  18: 'Q6_K',
  19: 'IQ2_XXS',
  20: 'IQ2_XS',
  21: 'Q2_K_S',
  22: 'IQ3_XS',
  23: 'IQ3_XXS',
  24: 'IQ1_S',
  25: 'IQ4_NL',
  26: 'IQ3_S',
  27: 'IQ3_M',
  28: 'IQ2_S',
  29: 'IQ2_M',
  30: 'IQ4_XS',
  31: 'IQ1_M',
  32: 'BF16',
  33: 'Q4_0_4_4',
  34: 'Q4_0_4_8',
  35: 'Q4_0_8_8',
  36: 'TQ1_0',
  37: 'TQ2_0',
  38: 'MXFP4_MOE',
};

/** ggml_type from ggml.h, used when general.file_type is missing. */
const TENSOR_TYPES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

export function fileTypeName(fileType: number): string {
  return FILE_TYPES[fileType] ?? `unknown(${fileType})`;
}

/** Ollama's format.HumanNumber. */
export function humanNumber(n: number): string {
  const scaled = (v: number, decimals: number, unit: string): string =>
    `${v === Math.floor(v) ? v.toFixed(0) : v.toFixed(decimals)}${unit}`;
  if (n >= 1e9) return scaled(n / 1e9, 1, 'B');
  if (n >= 1e6) return scaled(n / 1e6, 2, 'M');
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

export function tensorTypeName(type: number): string {
  return TENSOR_TYPES[type] ?? `unknown(${type})`;
}

/**
 * [elements per block, bytes per block] of the ggml types whose layout is settled (ggml-common.h);
 * used to tell how long a GGUF file must be. A type missing here counts as its first byte only, so
 * a type added later can make the check lenient, never make a whole file look short.
 */
const TYPE_BLOCKS: Record<number, [number, number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  20: [32, 18], // IQ4_NL
  23: [256, 136], // IQ4_XS
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
  28: [1, 8], // F64
  30: [1, 2], // BF16
};

/** Bytes a tensor of `type` with `elements` elements takes in the file (1 for a type not listed). */
export function tensorByteSize(type: number, elements: number): number {
  const block = TYPE_BLOCKS[type];
  return block ? Math.ceil(elements / block[0]) * block[1] : 1;
}
