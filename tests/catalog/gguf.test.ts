import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufError, humanNumber, readGguf } from '../../src/catalog/gguf.js';
import { CHATML_TEMPLATE, writeTinyModel } from '../fixtures/gguf-writer.js';
import { generateFixtureModels, type FixtureModels } from '../fixtures/models.js';

// The fixture vocabulary: 3 specials, 256 byte tokens, 39 word pieces, 2 ChatML markers.
const VOCAB = 300;
const params = (E: number, F: number, layers: number, V = VOCAB): number =>
  2 * E * V + E + layers * (2 * E + 4 * E * E + 3 * E * F);

describe('readGguf', () => {
  let dir: string;
  let models: FixtureModels;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'corral-gguf-'));
    models = await generateFixtureModels(join(dir, 'models'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads the header of a chat model', async () => {
    const info = await readGguf(models.chat);
    expect(info).toMatchObject({
      architecture: 'llama',
      name: 'tiny-chat',
      fileType: 0,
      quantization: 'F32',
      parameterCount: params(64, 128, 2),
      parameterSize: '121K',
      contextLength: 2048,
      embeddingLength: 64,
      blockCount: 2,
      headCount: 2,
      headCountKv: 2,
      chatTemplate: CHATML_TEMPLATE,
      hasFim: false,
    });
    expect(info.tensorBytes).toBe(params(64, 128, 2) * 4);
    expect(info.metadata['general.architecture']).toBe('llama');
    expect(info.metadata['llama.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-5);
    expect(info.metadata['tokenizer.ggml.tokens']).toBeNull();
    expect(info.metadata['tokenizer.ggml.scores']).toBeNull();
    expect('tokenizer.ggml.token_type' in info.metadata).toBe(true);
    expect(info.tensors).toBeUndefined();
    expect(JSON.stringify(info.metadata).length).toBeLessThan(2000);
  });

  it('agrees with an independent parser (@huggingface/gguf)', async () => {
    const ours = await readGguf(models.fim, { verbose: true });
    const theirs = await hfGguf(models.fim, { allowLocalFile: true, computeParametersCount: true });
    expect(ours.parameterCount).toBe(theirs.parameterCount);
    expect(ours.tensors!.map((t) => t.name)).toEqual(theirs.tensorInfos.map((t) => t.name));
    expect(ours.tensors!.map((t) => t.shape)).toEqual(theirs.tensorInfos.map((t) => t.shape.map(Number)));
    const meta = theirs.metadata as Record<string, unknown>;
    for (const key of [
      'general.architecture',
      'llama.block_count',
      'tokenizer.ggml.fim_mid_token_id',
      'tokenizer.ggml.tokens',
    ]) {
      expect(ours.metadata[key], key).toEqual(meta[key]);
    }
  });

  it('returns arrays and tensors when verbose', async () => {
    const info = await readGguf(models.chat2, { verbose: true });
    const tokens = info.metadata['tokenizer.ggml.tokens'] as string[];
    expect(tokens).toHaveLength(VOCAB);
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(info.metadata['tokenizer.ggml.token_type']).toHaveLength(VOCAB);
    expect(info.tensors).toHaveLength(3 + 9 * 3);
    expect(info.tensors![0]).toEqual({ name: 'token_embd.weight', type: 'F32', shape: [96, VOCAB] });
    expect(info.parameterCount).toBe(params(96, 192, 3));
  });

  it('detects fill-in-the-middle support', async () => {
    expect((await readGguf(models.fim)).hasFim).toBe(true);
    // The token alone is enough (llama.cpp detects it by text when the id keys are missing).
    const file = join(dir, 'fim-token-only.gguf');
    await writeTinyModel(file, { extraTokens: ['<|fim_prefix|>'] });
    expect((await readGguf(file)).hasFim).toBe(true);
  });

  it('derives the quantization from the tensors when general.file_type is missing', async () => {
    const file = join(dir, 'no-ftype.gguf');
    await writeTinyModel(file, { fileType: null, chatTemplate: null });
    const info = await readGguf(file);
    expect(info.fileType).toBeUndefined();
    expect(info.quantization).toBe('F32');
    expect(info.chatTemplate).toBeUndefined();
  });

  it('reads headers larger than the first read', async () => {
    const file = join(dir, 'long-template.gguf');
    const template = `{{ messages }}${' '.repeat(9 << 20)}`;
    await writeTinyModel(file, { chatTemplate: template });
    const info = await readGguf(file);
    expect(info.chatTemplate).toHaveLength(template.length);
    expect(info.parameterCount).toBe(params(64, 128, 2));
  });

  it('names llama_ftype values', async () => {
    const file = join(dir, 'q4km.gguf');
    await writeTinyModel(file, { fileType: 15 });
    expect((await readGguf(file)).quantization).toBe('Q4_K_M');
  });

  it('reads a header whose tensor data is missing, without touching the data', async () => {
    const info = await readGguf(models.broken);
    expect(info.name).toBe('broken');
    expect(info.tensorBytes).toBeLessThan(params(64, 128, 2) * 4);
  });

  it('rejects files that are not GGUF or whose header is cut short', async () => {
    const junk = join(dir, 'junk.gguf');
    await writeFile(junk, 'this is not a model at all, just some text');
    await expect(readGguf(junk)).rejects.toThrow(GgufError);
    const cut = join(dir, 'cut.gguf');
    const whole = await readFile(models.chat);
    await writeFile(cut, whole.subarray(0, 300));
    await expect(readGguf(cut)).rejects.toThrow(/truncated/);
    const huge = Buffer.alloc(32);
    huge.write('GGUF');
    huge.writeUInt32LE(3, 4);
    huge.writeBigUInt64LE(1n << 62n, 8);
    await writeFile(join(dir, 'huge.gguf'), huge);
    await expect(readGguf(join(dir, 'huge.gguf'))).rejects.toThrow(GgufError);
  });
});

describe('humanNumber', () => {
  it('formats like Ollama', () => {
    expect(humanNumber(7_241_732_096)).toBe('7.2B');
    expect(humanNumber(8_000_000_000)).toBe('8B');
    expect(humanNumber(494_032_768)).toBe('494.03M');
    expect(humanNumber(3_000_000)).toBe('3M');
    expect(humanNumber(120_640)).toBe('121K');
    expect(humanNumber(999)).toBe('999');
  });
});
