import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { readGguf } from '../../src/catalog/gguf.js';
import { modelStem, parseSplitName, readGgufShards, shardPaths } from '../../src/catalog/split.js';
import { defaultConfig } from '../../src/config/load.js';
import type { ModelEntry } from '../../src/config/schema.js';
import { pickQuantFiles, resolveUrl } from '../../src/models/hf-resolver.js';
import { writeTinyModel, writeTinySplitModel } from '../fixtures/gguf-writer.js';

const sha = async (p: string): Promise<string> =>
  `sha256:${createHash('sha256')
    .update(await readFile(p))
    .digest('hex')}`;
const entry = (path: string): ModelEntry => ({ path, aliases: [], args: [], options: {}, pinned: false });

describe('split names', () => {
  it('follows llama_split_path exactly', () => {
    expect(parseSplitName('/m/Big-Q4_K_M-00002-of-00003.gguf')).toEqual({
      prefix: '/m/Big-Q4_K_M',
      index: 1,
      count: 3,
    });
    // llama-server derives `.gguf` and five digits: other spellings are ordinary files.
    for (const p of [
      '/m/a-0001-of-0003.gguf',
      '/m/a-00001-of-00003.GGUF',
      '/m/a-00004-of-00003.gguf',
      '/m/a-00000-of-00003.gguf',
    ])
      expect(parseSplitName(p), p).toBeUndefined();
    expect(shardPaths('/m/a-00001-of-00002.gguf')).toEqual(['/m/a-00001-of-00002.gguf', '/m/a-00002-of-00002.gguf']);
    expect(shardPaths('/m/a.gguf')).toEqual(['/m/a.gguf']);
    expect(() => shardPaths('/m/a-00002-of-00002.gguf')).toThrow(/shard 2 of 2: use shard 1, a-00001-of-00002\.gguf/);
    expect(modelStem('/m/Big-Q4_K_M-00001-of-00003.gguf')).toBe('Big-Q4_K_M');
  });
});

describe('Catalog with split models', () => {
  let root: string;
  let shards: string[];
  let whole: string;
  let catalog: Catalog;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'corral-split-'));
    await mkdir(join(root, 'models', 'big'), { recursive: true });
    await mkdir(join(root, 'models', 'holey'), { recursive: true });
    await mkdir(join(root, 'models', 'headless'), { recursive: true });
    await mkdir(join(root, 'etc'), { recursive: true });
    shards = await writeTinySplitModel(join(root, 'models', 'big', 'Big-F32'), 3, { seed: 5, name: 'big' });
    whole = join(root, 'whole.gguf');
    await writeTinyModel(whole, { seed: 5, name: 'big' });
    const holey = await writeTinySplitModel(join(root, 'models', 'holey', 'holey'), 3, { seed: 6 });
    await rm(holey[1]!);
    const headless = await writeTinySplitModel(join(root, 'models', 'headless', 'headless'), 2, { seed: 7 });
    await rm(headless[0]!);
    const configured = await writeTinySplitModel(join(root, 'etc', 'own'), 2, { seed: 8 });
    const config = defaultConfig();
    config.models_dirs = ['models'];
    config.data_dir = 'state';
    config.models = { mine: entry(configured[0]!), wrong: entry(configured[1]!) };
    catalog = new Catalog({ config, baseDir: join(root, 'etc'), cwd: root });
    await catalog.refresh();
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('lists a complete set once, under its stem, at shard 1, with the summed size', async () => {
    expect(catalog.list().map((m) => m.name)).toEqual(['big-f32:latest', 'mine:latest']);
    const m = catalog.resolve('big-f32')!;
    expect(m.path).toBe(shards[0]);
    const sizes = await Promise.all(shards.map(async (p) => (await stat(p)).size));
    expect(m.size).toBe(sizes[0]! + sizes[1]! + sizes[2]!);
    expect(m.size).toBeGreaterThan(sizes[0]! * 2);
  });

  it('takes metadata from shard 1 and counts the parameters of every shard', async () => {
    const m = catalog.resolve('big-f32')!;
    const unsplit = await readGguf(whole);
    expect(m.gguf.name).toBe('big');
    expect(m.gguf.chatTemplate).toBe(unsplit.chatTemplate);
    expect(m.gguf.parameterCount).toBe(unsplit.parameterCount);
    expect(m.gguf.parameterSize).toBe(unsplit.parameterSize);
    expect((await readGguf(shards[0]!)).parameterCount).toBeLessThan(unsplit.parameterCount);
    const verbose = await readGgufShards(shards, { verbose: true });
    expect(verbose.tensors).toEqual((await readGguf(whole, { verbose: true })).tensors);
  });

  it('digests the shards in order: sha256 over their sha256 lines', async () => {
    const lines = (await Promise.all(shards.map(sha))).map((d) => `${d}\n`).join('');
    expect(catalog.resolve('big-f32')!.digest).toBe(`sha256:${createHash('sha256').update(lines).digest('hex')}`);
    // Shard 2 changes: so does the model's digest.
    const before = catalog.resolve('big-f32')!.digest;
    await writeTinySplitModel(join(root, 'models', 'big', 'Big-F32'), 3, { seed: 50, name: 'big' });
    await catalog.refresh();
    expect(catalog.resolve('big-f32')!.digest).not.toBe(before);
  });

  it('skips incomplete sets with a warning naming the missing shard, and says why on use', () => {
    const w = catalog.warnings.join('\n');
    expect(w).toMatch(
      /skipping .*holey-00001-of-00003\.gguf: incomplete split model: holey-00002-of-00003\.gguf missing \(2 of 3 shards present\)/,
    );
    expect(w).toMatch(
      /skipping .*headless-00001-of-00002\.gguf: incomplete split model: headless-00001-of-00002\.gguf missing/,
    );
    expect(catalog.resolve('holey')).toBeUndefined();
    expect(catalog.unavailable('holey')).toMatch(/holey-00002-of-00003\.gguf missing/);
    expect(catalog.unavailable('big-f32')).toBeUndefined();
  });

  it('gives a configured shard 1 the size of the whole set and refuses a configured later shard', async () => {
    const m = catalog.resolve('mine')!;
    const files = shardPaths(m.path);
    expect(files).toHaveLength(2);
    expect(m.size).toBe((await stat(files[0]!)).size + (await stat(files[1]!)).size);
    expect(catalog.warnings.join('\n')).toMatch(
      /model wrong:latest .*own-00002-of-00002\.gguf is shard 2 of 2: use shard 1, own-00001-of-00002\.gguf/,
    );
  });

  it('reports a missing shard appearing and disappearing on refresh', async () => {
    await rename(shards[2]!, `${shards[2]}.away`);
    await catalog.refresh();
    expect(catalog.resolve('big-f32')).toBeUndefined();
    expect(catalog.unavailable('big-f32')).toMatch(/Big-F32-00003-of-00003\.gguf missing/);
    await rename(`${shards[2]}.away`, shards[2]!);
    await catalog.refresh();
    expect(catalog.resolve('big-f32')?.path).toBe(shards[0]);
  });
});

describe('pickQuantFiles', () => {
  const split = (stem: string, n: number): string[] =>
    Array.from({ length: n }, (_, i) => `${stem}-0000${i + 1}-of-0000${n}.gguf`);

  it('resolves a quant published only as a split set to all its shards, in order', () => {
    const files = ['m-Q8_0.gguf', ...split('Q4_K_M/m-Q4_K_M', 3).reverse(), 'mmproj-m-f16.gguf'];
    expect(pickQuantFiles(files, 'Q4_K_M')).toEqual(split('Q4_K_M/m-Q4_K_M', 3));
    expect(pickQuantFiles(files, undefined)).toEqual(split('Q4_K_M/m-Q4_K_M', 3));
    expect(pickQuantFiles(files, 'q8_0')).toEqual(['m-Q8_0.gguf']);
    expect(pickQuantFiles(files, 'IQ4_K_M')).toBeUndefined();
  });

  it('prefers a single file over a split set of the same quant; a lone set needs no tag', () => {
    expect(pickQuantFiles(['m-Q4_K_M.gguf', ...split('m-Q4_K_M', 2)], 'Q4_K_M')).toEqual(['m-Q4_K_M.gguf']);
    expect(pickQuantFiles(split('m-Q6_K', 2), undefined)).toEqual(split('m-Q6_K', 2));
    expect(pickQuantFiles(['m-Q6_K.gguf', ...split('m-Q8_0', 2)], undefined)).toBeUndefined();
  });

  it('a URL to shard 1 brings its siblings; a URL to a later shard is refused', () => {
    const src = resolveUrl('http://h:1/x/big-00001-of-00002.gguf');
    expect(src.files.map((f) => [f.url, f.relPath])).toEqual([
      ['http://h:1/x/big-00001-of-00002.gguf', join('h_1', 'x', 'big-00001-of-00002.gguf')],
      ['http://h:1/x/big-00002-of-00002.gguf', join('h_1', 'x', 'big-00002-of-00002.gguf')],
    ]);
    expect(() => resolveUrl('http://h:1/x/big-00002-of-00002.gguf')).toThrow(/shard 2 of 2/);
  });
});
