import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ollama } from 'ollama';
import { estimateMemory } from '../../src/scheduler/memory.js';
import { writeTinySplitModel } from '../fixtures/gguf-writer.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startHub, type Hub } from '../helpers/hub.js';

/** Split models end to end: discovered, pulled from the stand-in hub, served by a real llama-server, deleted. */
let t: TestGateway;
let hub: Hub;
let ollama: Ollama;
let src: string;
/** The three shards of one tiny model, as bytes. */
let shards: Buffer[];
const logLines: string[] = [];

const sum = (bufs: Buffer[]): number => bufs.reduce((n, b) => n + b.length, 0);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const hubSet = (dir: string, stem: string): Record<string, Buffer> =>
  Object.fromEntries(shards.map((b, i) => [`${dir}/${stem}-0000${i + 1}-of-00003.gguf`, b]));

beforeAll(async () => {
  src = await mkdtemp(join(tmpdir(), 'corral-split-src-'));
  const paths = await writeTinySplitModel(join(src, 'Tiny-Split'), 3, { name: 'split', seed: 12 });
  shards = await Promise.all(paths.map((p) => readFile(p)));
  hub = await startHub({
    // Real repositories keep large quants in a folder per quant, split in shards.
    ...hubSet('acme/big-GGUF/Q4_K_M', 'big-Q4_K_M'),
    ...hubSet('acme/bad-GGUF', 'bad-Q4_K_M'),
  });
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  t = await startGateway(
    { pull: { huggingface_url: hub.url, insecure: true, private_hosts: ['127.0.0.1'] } },
    { logger: { level: 'warn', stream: logStream } },
  );
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => {
  await t?.close();
  hub?.server.close();
  await rm(src, { recursive: true, force: true });
});

/** Drops copies of the shards, renamed to `stem` and all but shard `skip`, into data/models/<folder>; refreshes the catalogue. */
async function drop(folder: string, stem: string, skip?: number): Promise<string[]> {
  const dir = join(t.dir, 'data', 'models', folder);
  await mkdir(dir, { recursive: true });
  const paths = [1, 2, 3].map((i) => join(dir, `${stem}-0000${i}-of-00003.gguf`));
  for (const [i, p] of paths.entries()) if (i !== skip) await writeFile(p, shards[i]!);
  await t.gw.catalog.refresh();
  return paths;
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

describe('split GGUF models', () => {
  it('a dropped-in set is listed once with the summed size and answers /api/generate', async () => {
    const paths = await drop('dropped', 'Tiny-Split');
    const tags = (await ollama.list()).models.filter((m) => m.name.startsWith('tiny-split'));
    expect(tags.map((m) => [m.name, m.size])).toEqual([['tiny-split:latest', sum(shards)]]);
    const show = (await (await post(`${t.url}/api/show`, { model: 'tiny-split' })).json()) as Record<string, any>;
    expect(show.size).toBe(sum(shards));
    expect(show.modelfile).toContain(`FROM ${paths[0]}`);

    const gen = await ollama.generate({ model: 'tiny-split', prompt: 'hello', options: { num_predict: 3 } });
    expect(gen.eval_count).toBe(3);
    // The memory the scheduler budgets for covers every shard, not just the first.
    const ps = (await ollama.ps()).models.find((m) => m.name === 'tiny-split:latest')!;
    const { ctx_size, parallel } = t.gw.config().defaults;
    expect(ps.size).toBe(
      estimateMemory(
        { fileBytes: sum(shards), blockCount: 2, embeddingLength: 64, headCount: 2, headCountKv: 2 },
        ctx_size * parallel,
      ),
    );
  });

  it('an incomplete set is not listed, is logged, and using it names the missing shard', async () => {
    const paths = await drop('holey', 'Holey', 1);
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('holey:latest');
    const warnings = logLines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.msg.includes(paths[0]!));
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 40,
        msg: `skipping ${paths[0]}: incomplete split model: Holey-00002-of-00003.gguf missing (2 of 3 shards present)`,
      }),
    ]);
    const res = await post(`${t.url}/api/generate`, { model: 'holey', prompt: 'hi', stream: false });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe(
      'model "holey" not found: incomplete split model: Holey-00002-of-00003.gguf missing (2 of 3 shards present)',
    );
    expect(t.gw.scheduler.loaded().map((l) => l.name)).not.toContain('holey:latest');
    await rm(join(t.dir, 'data', 'models', 'holey'), { recursive: true });
  });

  it('pulls every shard of a split quant with per-file progress, then serves it', async () => {
    const res = await post(`${t.url}/api/pull`, { model: 'hf.co/acme/big-GGUF:Q4_K_M' });
    const lines = (await ndjson(res)) as { status: string; digest?: string; total?: number; completed?: number }[];
    expect(lines.at(-1)).toEqual({ status: 'success' });
    // One progress bar per shard, in shard order, each ending complete.
    const digests = shards.map((b) => `sha256:${sha(b)}`);
    const pulling = lines.filter((l) => l.digest);
    expect([...new Set(pulling.map((l) => l.digest))]).toEqual(digests);
    for (const [i, d] of digests.entries()) {
      expect(pulling.filter((l) => l.digest === d).at(-1)).toEqual({
        status: `pulling ${d.slice(7, 19)}`,
        digest: d,
        total: shards[i]!.length,
        completed: shards[i]!.length,
      });
    }
    expect(lines.filter((l) => l.status === 'verifying sha256 digest')).toHaveLength(3);

    const dir = join(t.dir, 'data', 'models', 'hf.co', 'acme', 'big-GGUF');
    expect(await filesUnder(dir)).toEqual([1, 2, 3].map((i) => join(dir, `big-Q4_K_M-0000${i}-of-00003.gguf`)));
    for (const [i, b] of shards.entries())
      expect(sha(await readFile(join(dir, `big-Q4_K_M-0000${i + 1}-of-00003.gguf`)))).toBe(sha(b));
    const manifest = JSON.parse(await readFile(join(t.dir, 'data', 'models.json'), 'utf8')) as {
      models: Record<string, { path: string; sha256: string }>;
    };
    expect(manifest.models['hf.co/acme/big-gguf:q4_k_m']).toMatchObject({
      path: join('models', 'hf.co', 'acme', 'big-GGUF', 'big-Q4_K_M-00001-of-00003.gguf'),
      sha256: sha(shards[0]!),
    });

    const tags = (await ollama.list()).models;
    expect(tags.filter((m) => m.name.includes('big')).map((m) => [m.name, m.size])).toEqual([
      ['hf.co/acme/big-gguf:q4_k_m', sum(shards)],
    ]);
    const gen = await ollama.generate({
      model: 'hf.co/acme/big-GGUF:Q4_K_M',
      prompt: 'hi',
      options: { num_predict: 2 },
    });
    expect(gen.eval_count).toBe(2);
  });

  it('a checksum mismatch on shard 2 leaves nothing runnable; the retry resumes from the verified shard 1', async () => {
    hub.lie.add('acme/bad-GGUF/bad-Q4_K_M-00002-of-00003.gguf');
    const res = await post(`${t.url}/api/pull`, { model: 'hf.co/acme/bad-GGUF:Q4_K_M', stream: false });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /sha256 mismatch for .*bad-Q4_K_M-00002-of-00003\.gguf/,
    );
    const dir = join(t.dir, 'data', 'models', 'hf.co', 'acme', 'bad-GGUF');
    // Only the verified shard 1 remains, as a .partial that neither the catalogue nor llama-server takes.
    expect((await filesUnder(dir)).map((f) => basename(f))).toEqual(['bad-Q4_K_M-00001-of-00003.gguf.partial']);
    expect((await ollama.list()).models.map((m) => m.name).filter((n) => n.includes('bad'))).toEqual([]);
    expect(
      (await post(`${t.url}/api/generate`, { model: 'hf.co/acme/bad-GGUF:Q4_K_M', prompt: 'hi', stream: false }))
        .status,
    ).toBe(404);

    hub.lie.clear();
    const shard1 = (): number => hub.requests.filter((r) => r.path.endsWith('bad-Q4_K_M-00001-of-00003.gguf')).length;
    const before = shard1();
    expect((await post(`${t.url}/api/pull`, { model: 'hf.co/acme/bad-GGUF:Q4_K_M', stream: false })).status).toBe(200);
    expect(shard1()).toBe(before);
    expect((await filesUnder(dir)).map((f) => basename(f))).toEqual(
      [1, 2, 3].map((i) => `bad-Q4_K_M-0000${i}-of-00003.gguf`),
    );
  });

  it('delete removes every shard of a pulled split model', async () => {
    const dir = join(t.dir, 'data', 'models', 'hf.co', 'acme', 'bad-GGUF');
    await ollama.delete({ model: 'hf.co/acme/bad-GGUF:Q4_K_M' });
    expect(await filesUnder(dir)).toEqual([]);
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('hf.co/acme/bad-gguf:q4_k_m');
    // The other pulled set and the operator's dropped-in files are untouched.
    expect(await filesUnder(join(t.dir, 'data', 'models', 'hf.co', 'acme', 'big-GGUF'))).toHaveLength(3);
    expect(await filesUnder(join(t.dir, 'data', 'models', 'dropped'))).toHaveLength(3);
  });
});
