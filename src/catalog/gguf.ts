import { gguf, GGMLFileQuantizationType, GGMLQuantizationType } from '@huggingface/gguf';

/** What Corral needs from a GGUF header; read without touching tensor data. */
export interface GgufInfo {
  architecture: string;
  name?: string | undefined;
  fileType?: number | undefined;
  quantization: string;
  parameterCount: number;
  parameterSize: string;
  contextLength?: number | undefined;
  embeddingLength?: number | undefined;
  blockCount?: number | undefined;
  headCount?: number | undefined;
  headCountKv?: number | undefined;
  chatTemplate?: string | undefined;
  hasFim: boolean;
  poolingType?: number | undefined;
  /** Header keys for /api/show's model_info; large arrays (the vocabulary) are left out. */
  metadata: Record<string, unknown>;
}

/** Ollama-style parameter size: "7.2B", "494.03M", "1.23K". */
export function formatParameterSize(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [size, unit] of units) {
    if (n >= size) {
      const v = n / size;
      return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${unit}`.replace(/\.0+([A-Z])$/, '$1');
    }
  }
  return String(n);
}

function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

export async function readGguf(path: string, opts: { verbose?: boolean } = {}): Promise<GgufInfo> {
  const parsed = await gguf(path, { allowLocalFile: true, computeParametersCount: true });
  const md = parsed.metadata as Record<string, unknown>;
  const arch = String(md['general.architecture'] ?? 'unknown');
  const num = (key: string): number | undefined => {
    const v = md[`${arch}.${key}`];
    return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : undefined;
  };
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(md)) {
    if (key === 'version' || key === 'tensor_count' || key === 'kv_count') continue;
    if (Array.isArray(value) && value.length > 64 && !opts.verbose) {
      metadata[key] = null;
      continue;
    }
    metadata[key] = plain(value);
  }
  const fileType = typeof md['general.file_type'] === 'number' ? (md['general.file_type'] as number) : undefined;
  let quantization = fileType !== undefined ? (GGMLFileQuantizationType[fileType] ?? `type ${fileType}`) : undefined;
  if (quantization === undefined) {
    // No file_type key: name it after the most common tensor type.
    const counts = new Map<number, number>();
    for (const t of parsed.tensorInfos) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    quantization = top !== undefined ? (GGMLQuantizationType[top] ?? 'unknown') : 'unknown';
  }
  quantization = quantization.replace(/^MOSTLY_/, '');
  const kvHeads = md[`${arch}.attention.head_count_kv`];
  return {
    architecture: arch,
    name: typeof md['general.name'] === 'string' ? md['general.name'] : undefined,
    fileType,
    quantization,
    parameterCount: parsed.parameterCount,
    parameterSize: formatParameterSize(parsed.parameterCount),
    contextLength: num('context_length'),
    embeddingLength: num('embedding_length'),
    blockCount: num('block_count'),
    headCount: num('attention.head_count'),
    headCountKv: Array.isArray(kvHeads) ? Number(kvHeads[0]) : num('attention.head_count_kv'),
    chatTemplate: typeof md['tokenizer.chat_template'] === 'string' ? md['tokenizer.chat_template'] : undefined,
    hasFim: md['tokenizer.ggml.fim_pre_token_id'] !== undefined && md['tokenizer.ggml.fim_suf_token_id'] !== undefined,
    poolingType: num('pooling_type'),
    metadata,
  };
}
