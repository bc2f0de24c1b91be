import { open } from 'node:fs/promises';
import { fileTypeName, humanNumber, tensorByteSize, tensorTypeName } from './ggml-names.js';

export { fileTypeName, humanNumber, tensorTypeName };

/** What the catalog and /api/show need from a GGUF file, read from its header only (never the weights). */
export interface GgufInfo {
  architecture: string;
  name?: string;
  /** general.file_type (llama_ftype). */
  fileType?: number;
  quantization: string;
  parameterCount: number;
  /** Ollama style: '7.2B', '494.03M', '123K'. */
  parameterSize: string;
  contextLength?: number;
  embeddingLength?: number;
  blockCount?: number;
  headCount?: number;
  headCountKv?: number;
  chatTemplate?: string;
  hasFim: boolean;
  /**
   * Bytes of the longest piece in the vocabulary: no token covers more of a text than this (pieces
   * spell spaces as 3-byte ▁ and bytes as <0xAB>), so a text longer than context × this cannot fit.
   */
  maxTokenBytes: number;
  /** Tokens in the vocabulary: valid token ids are below it. */
  vocabSize: number;
  /** Bytes from the start of the (aligned) data section to the end of the file. */
  tensorBytes: number;
  /**
   * How many bytes the file is short of the end of its last tensor: more than 0 for a file still
   * being copied or cut short (summed over the shards of a split model).
   */
  missingBytes: number;
  /** GGUF key/values as Ollama's `model_info`: arrays are null unless read with `verbose`. */
  metadata: Record<string, unknown>;
  /** Only with `verbose`, like Ollama's `tensors` in /api/show. */
  tensors?: GgufTensor[];
}

export interface GgufTensor {
  name: string;
  type: string;
  shape: number[];
}

export class GgufError extends Error {
  override name = 'GgufError';
}

const FIM_TOKENS = ['<|fim_prefix|>', '<fim_prefix>', '<|fim▁begin|>', '<PRE>'].map((t) => Buffer.from(t));
const FIM_LENGTHS = new Set(FIM_TOKENS.map((b) => b.length));
const FIM_TEXT = new Set(FIM_TOKENS.map((b) => b.toString()));
const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Thrown when the parser runs past the bytes read so far; the caller reads a longer prefix and starts over. */
class NeedMore extends Error {}

/**
 * Synchronous reads over a prefix of the file. Awaiting every value of a 150k-token vocabulary costs
 * half a second in promise overhead; parsing a buffer and re-parsing a longer one when it runs out
 * costs a few milliseconds.
 */
class Reader {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly size: number,
  ) {}

  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > this.size) throw new GgufError(`truncated header at byte ${this.pos}`);
    throw new NeedMore();
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    // Two u32 halves: BigInt conversions dominate the profile of large vocabularies.
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    if (hi >= 0x200000) throw new GgufError(`implausible 64-bit value at byte ${this.pos}`);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  /** Length of the last string read with stringIn. */
  lastLength = 0;

  /** Reads a string and reports whether it is one of `candidates`, without decoding it. */
  stringIn(candidates: Buffer[], lengths: Set<number>): boolean {
    const len = this.u64();
    this.need(len);
    const start = this.pos;
    this.pos += len;
    this.lastLength = len;
    return (
      lengths.has(len) &&
      candidates.some((c) => c.length === len && this.buf.compare(c, 0, len, start, start + len) === 0)
    );
  }

  string(): string {
    const len = this.u64();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  scalar(type: number): unknown {
    if (type === 8) return this.string();
    const size = SCALAR_SIZE[type];
    if (size === undefined) throw new GgufError(`unknown value type ${type} at byte ${this.pos}`);
    this.need(size);
    const b = this.buf;
    const p = this.pos;
    this.pos += size;
    switch (type) {
      case 0:
        return b.readUInt8(p);
      case 1:
        return b.readInt8(p);
      case 2:
        return b.readUInt16LE(p);
      case 3:
        return b.readInt16LE(p);
      case 4:
        return b.readUInt32LE(p);
      case 5:
        return b.readInt32LE(p);
      case 6:
        return b.readFloatLE(p);
      case 7:
        return b.readUInt8(p) !== 0;
      case 10:
        return Number(b.readBigUInt64LE(p));
      case 11:
        return Number(b.readBigInt64LE(p));
      default:
        return b.readDoubleLE(p);
    }
  }
}

export interface ReadGgufOptions {
  /** Keep arrays (tokens, merges, …) in `metadata` and list the tensors. */
  verbose?: boolean;
}

/** Headers beyond this are not plausible (the largest real vocabularies take ~20 MB). */
const MAX_HEADER = 512 * 1024 * 1024;

export async function readGguf(path: string, opts: ReadGgufOptions = {}): Promise<GgufInfo> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < 24) throw new GgufError(`${path}: not a GGUF file (too short)`);
    let buf = Buffer.alloc(0);
    for (let want = Math.min(size, 4 << 20); ; want = Math.min(size, want * 4, MAX_HEADER)) {
      const more = Buffer.alloc(want - buf.length);
      const { bytesRead } = await fh.read(more, 0, more.length, buf.length);
      buf = Buffer.concat([buf, more.subarray(0, bytesRead)]);
      try {
        return parse(new Reader(buf, size), size, path, opts);
      } catch (err) {
        if (err instanceof GgufError && !err.message.startsWith(path)) throw new GgufError(`${path}: ${err.message}`);
        if (!(err instanceof NeedMore)) throw err;
        if (buf.length >= Math.min(size, MAX_HEADER) || bytesRead === 0)
          throw new GgufError(`${path}: header larger than ${buf.length} bytes`);
      }
    }
  } finally {
    await fh.close();
  }
}

function parse(r: Reader, size: number, path: string, opts: ReadGgufOptions): GgufInfo {
  const magic = r.u32();
  if (magic !== 0x46554747) throw new GgufError(`${path}: not a GGUF file (bad magic)`);
  const version = r.u32();
  if (version < 2 || version > 3) throw new GgufError(`${path}: unsupported GGUF version ${version}`);
  const tensorCount = r.u64();
  const kvCount = r.u64();

  const metadata: Record<string, unknown> = {};
  let fimToken = false;
  let maxTokenBytes = 0;
  let vocabSize = 0;
  for (let i = 0; i < kvCount; i++) {
    const key = r.string();
    const type = r.u32();
    if (type !== 9) {
      metadata[key] = r.scalar(type);
      continue;
    }
    const of = r.u32();
    const count = r.u64();
    if (of === 9) throw new GgufError(`${path}: nested arrays are not supported (${key})`);
    const scan = key === 'tokenizer.ggml.tokens' && of === 8;
    if (scan) vocabSize = count;
    if (!opts.verbose) {
      metadata[key] = null;
      if (scan) {
        for (let j = 0; j < count; j++) {
          if (r.stringIn(FIM_TOKENS, FIM_LENGTHS)) fimToken = true;
          if (r.lastLength > maxTokenBytes) maxTokenBytes = r.lastLength;
        }
      } else if (of === 8) {
        for (let j = 0; j < count; j++) r.skip(r.u64());
      } else {
        const size = SCALAR_SIZE[of];
        if (size === undefined) throw new GgufError(`${path}: unknown array type ${of} (${key})`);
        r.skip(count * size);
      }
      continue;
    }
    const values: unknown[] = [];
    for (let j = 0; j < count; j++) {
      const v = r.scalar(of);
      if (scan && FIM_TEXT.has(v as string)) fimToken = true;
      if (scan) maxTokenBytes = Math.max(maxTokenBytes, Buffer.byteLength(v as string));
      values.push(v);
    }
    metadata[key] = values;
  }

  const tensors: GgufTensor[] = [];
  let dataEnd = 0;
  const elementsByType = new Map<number, number>();
  let parameterCount = 0;
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string();
    const dims = r.u32();
    if (dims > 8) throw new GgufError(`${path}: tensor ${name} has ${dims} dimensions`);
    const shape: number[] = [];
    for (let d = 0; d < dims; d++) shape.push(r.u64());
    const type = r.u32();
    const offset = r.u64();
    const n = shape.reduce((a, b) => a * b, 1);
    dataEnd = Math.max(dataEnd, offset + tensorByteSize(type, n));
    parameterCount += n;
    // Norms and biases stay F32 in quantized files; only matrices say what the quantization is.
    if (dims >= 2) elementsByType.set(type, (elementsByType.get(type) ?? 0) + n);
    if (opts.verbose) tensors.push({ name, type: tensorTypeName(type), shape });
  }

  const alignment = typeof metadata['general.alignment'] === 'number' ? (metadata['general.alignment'] as number) : 32;
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  const arch =
    typeof metadata['general.architecture'] === 'string' ? (metadata['general.architecture'] as string) : 'unknown';
  const num = (key: string): number | undefined => {
    const v = metadata[`${arch}.${key}`];
    return typeof v === 'number' ? v : undefined;
  };
  const fileType =
    typeof metadata['general.file_type'] === 'number' ? (metadata['general.file_type'] as number) : undefined;
  let quantization: string;
  if (fileType !== undefined) quantization = fileTypeName(fileType);
  else {
    const dominant = [...elementsByType].sort((a, b) => b[1] - a[1])[0];
    quantization = dominant ? tensorTypeName(dominant[0]) : 'unknown';
  }
  const name = metadata['general.name'];
  const template = metadata['tokenizer.chat_template'];
  const info: GgufInfo = {
    architecture: arch,
    quantization,
    parameterCount,
    parameterSize: humanNumber(parameterCount),
    hasFim: fimToken || typeof metadata['tokenizer.ggml.fim_pre_token_id'] === 'number',
    maxTokenBytes,
    vocabSize,
    tensorBytes: Math.max(0, size - dataStart),
    missingBytes: Math.max(0, dataStart + dataEnd - size),
    metadata,
  };
  if (typeof name === 'string') info.name = name;
  if (fileType !== undefined) info.fileType = fileType;
  if (typeof template === 'string') info.chatTemplate = template;
  const fields = [
    ['contextLength', 'context_length'],
    ['embeddingLength', 'embedding_length'],
    ['blockCount', 'block_count'],
    ['headCount', 'attention.head_count'],
    ['headCountKv', 'attention.head_count_kv'],
  ] as const;
  for (const [field, key] of fields) {
    const v = num(key);
    if (v !== undefined) info[field] = v;
  }
  if (opts.verbose) info.tensors = tensors;
  return info;
}
