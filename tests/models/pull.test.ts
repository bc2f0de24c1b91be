import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ollama } from 'ollama';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { createApiToken } from '../../src/auth/tokens.js';

let t: TestGateway;
let hub: Hub;
let model: Buffer;
let ollama: Ollama;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'corral-pull-'));
  const file = join(scratch, 'pulled.gguf');
  await writeTinyModel(file, { name: 'pulled', seed: 9 });
  model = await readFile(file);
  hub = await startHub({
    'acme/tiny-GGUF/tiny-Q4_K_M.gguf': model,
    'acme/tiny-GGUF/tiny-Q8_0.gguf': model,
    'acme/cut-GGUF/cut-Q4_K_M.gguf': model,
    'acme/bad-GGUF/bad-Q4_K_M.gguf': model,
    'files/direct.gguf': model,
    'files/reserve.gguf': model,
    'acme/vis-GGUF/vis-Q4_K_M.gguf': model,
    'acme/vis-GGUF/mmproj-vis-f16.gguf': Buffer.from('a projector'),
  });
  t = await startGateway({ pull: { huggingface_url: hub.url, insecure: true, private_hosts: ['127.0.0.1'] } });
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => {
  await t?.close();
  hub?.server.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function managedFiles(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(join(t.dir, 'data', 'models'));
  return out;
}

describe('/api/pull', () => {
  it('pulls hf.co/{user}/{repo}:{quant} with Ollama-shaped progress, then serves it', async () => {
    const parts = [];
    for await (const p of await ollama.pull({ model: 'hf.co/acme/tiny-GGUF:Q4_K_M', stream: true })) parts.push(p);
    expect(parts[0]!.status).toBe('pulling manifest');
    const dl = parts.filter((p) => p.status.startsWith('pulling ') && p.status !== 'pulling manifest');
    expect(dl.length).toBeGreaterThan(0);
    expect(dl.at(-1)).toMatchObject({
      total: model.length,
      completed: model.length,
      digest: `sha256:${createHash('sha256').update(model).digest('hex')}`,
    });
    expect(parts.map((p) => p.status)).toEqual(
      expect.arrayContaining(['verifying sha256 digest', 'writing manifest', 'success']),
    );
    expect(parts.at(-1)!.status).toBe('success');

    const list = await ollama.list();
    expect(list.models.map((m) => m.name)).toContain('hf.co/acme/tiny-gguf:q4_k_m');
    // The file is not listed twice (once by file name).
    expect(list.models.filter((m) => m.size === model.length)).toHaveLength(1);
    expect(await managedFiles()).toEqual([
      join(t.dir, 'data', 'models', 'hf.co', 'acme', 'tiny-GGUF', 'tiny-Q4_K_M.gguf'),
    ]);
    const gen = await ollama.generate({
      model: 'hf.co/acme/tiny-GGUF:Q4_K_M',
      prompt: 'hi',
      options: { num_predict: 2 },
    });
    expect(gen.eval_count).toBe(2);
  });

  it('stream:false answers one success object; a plain URL works', async () => {
    const res = await post(`${t.url}/api/pull`, { model: `${hub.url}/plain/files/direct.gguf`, stream: false });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'success' });
    expect((await ollama.show({ model: `${hub.url}/plain/files/direct.gguf` })).details.family).toBe('llama');
  });

  it('disk_reserve is read at each pull: after a reload that raises it, a pull is refused with 507', async () => {
    const ref = `${hub.url}/plain/files/reserve.gguf`;
    const config = await readFile(t.configFile, 'utf8');
    await writeFile(t.configFile, `${config}disk_reserve: 1000TB\n`);
    expect((await t.gw.reload()).ok).toBe(true);
    try {
      const refused = await post(`${t.url}/api/pull`, { model: ref, stream: false });
      expect(refused.status).toBe(507);
      expect(((await refused.json()) as { error: string }).error).toMatch(/^pull: not enough disk space/);
    } finally {
      await writeFile(t.configFile, config);
      expect((await t.gw.reload()).ok).toBe(true);
    }
    expect((await post(`${t.url}/api/pull`, { model: ref, stream: false })).status).toBe(200);
  });

  it('resumes with Range after an interrupted download and verifies the sha256', async () => {
    hub.cutOnce.set('acme/cut-GGUF/cut-Q4_K_M.gguf', 100_000);
    const res = await post(`${t.url}/api/pull`, { model: 'hf.co/acme/cut-GGUF:Q4_K_M' });
    const lines = await ndjson(res);
    expect(lines.at(-1)).toEqual({ status: 'success' });
    const ranges = hub.requests.filter((r) => r.path.includes('cut-Q4_K_M')).map((r) => r.range);
    expect(ranges).toEqual([undefined, 'bytes=100000-']);
    const file = join(t.dir, 'data', 'models', 'hf.co', 'acme', 'cut-GGUF', 'cut-Q4_K_M.gguf');
    expect(
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    ).toBe(createHash('sha256').update(model).digest('hex'));
  });

  it('rejects a checksum mismatch and leaves nothing behind', async () => {
    hub.lie.add('acme/bad-GGUF/bad-Q4_K_M.gguf');
    const before = await managedFiles();
    const res = await post(`${t.url}/api/pull`, { model: 'hf.co/acme/bad-GGUF:Q4_K_M', stream: false });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: string }).error).toMatch(/sha256 mismatch/);
    expect(await managedFiles()).toEqual(before);
    const tags = (await ollama.list()).models.map((m) => m.name);
    expect(tags).not.toContain('hf.co/acme/bad-gguf:q4_k_m');
  });

  it('404 upstream: unknown repo, unknown quant, missing URL', async () => {
    await expect(ollama.pull({ model: 'hf.co/acme/nope-GGUF:Q4_K_M' })).rejects.toMatchObject({ status_code: 404 });
    const res = await post(`${t.url}/api/pull`, { model: 'hf.co/acme/tiny-GGUF:IQ2_XS' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toContain('tiny-Q8_0.gguf');
    const url = await post(`${t.url}/api/pull`, { model: `${hub.url}/plain/files/missing.gguf`, stream: false });
    expect(url.status).toBe(404);
    expect(await managedFiles()).not.toContain(expect.stringContaining('missing'));
  });

  it('deduplicates concurrent pulls of the same model', async () => {
    const before = hub.requests.filter((r) => r.path.includes('tiny-Q8_0.gguf')).length;
    const [a, b] = await Promise.all([
      post(`${t.url}/api/pull`, { model: 'hf.co/acme/tiny-GGUF:Q8_0', stream: false }),
      post(`${t.url}/api/pull`, { model: 'hf.co/acme/tiny-GGUF:Q8_0', stream: false }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(hub.requests.filter((r) => r.path.includes('tiny-Q8_0.gguf')).length - before).toBe(1);
  });

  it('validates the body and refuses what it cannot pull', async () => {
    const bad = await post(`${t.url}/api/pull`, { model: 42 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('model');
    // Anything not Hugging Face or a URL is an Ollama registry name, checked as Ollama checks names.
    const invalid = await post(`${t.url}/api/pull`, { model: 'a/b/c/d:e' });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({ error: 'invalid model name' });
  });

  it('pulls the vision projector published beside the model; delete removes both', async () => {
    const res = await post(`${t.url}/api/pull`, { model: 'hf.co/acme/vis-GGUF', stream: false });
    expect(res.status).toBe(200);
    const dir = join(t.dir, 'data', 'models', 'hf.co', 'acme', 'vis-GGUF');
    expect((await readdir(dir)).sort()).toEqual(['mmproj-vis-f16.gguf', 'vis-Q4_K_M.gguf']);
    expect((await ollama.show({ model: 'hf.co/acme/vis-GGUF' })).capabilities).toContain('vision');
    await ollama.delete({ model: 'hf.co/acme/vis-GGUF' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('delete removes a pulled file; the pull survives a restart via the manifest', async () => {
    const file = join(t.dir, 'data', 'models', 'hf.co', 'acme', 'tiny-GGUF', 'tiny-Q8_0.gguf');
    expect((await stat(file)).size).toBe(model.length);
    await ollama.delete({ model: 'hf.co/acme/tiny-GGUF:Q8_0' });
    await expect(stat(file)).rejects.toThrow();
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('hf.co/acme/tiny-gguf:q8_0');
    await t.gw.catalog.refresh();
    expect(t.gw.catalog.resolve('hf.co/acme/tiny-GGUF:Q4_K_M')).toBeDefined();
  });

  it('changing the catalogue needs the operator role', async () => {
    const viewer = (await createApiToken(t.gw.store, { name: 'v', role: 'viewer', models: null })).secret;
    const operator = (await createApiToken(t.gw.store, { name: 'o', role: 'operator', models: null })).secret;
    const as = (secret: string) => ({
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    });
    for (const [path, body] of [
      ['/api/pull', { model: 'hf.co/acme/tiny-GGUF:Q8_0' }],
      ['/api/copy', { source: 'hf.co/acme/tiny-GGUF:Q4_K_M', destination: 'x' }],
      ['/api/create', { model: 'y', from: 'hf.co/acme/tiny-GGUF:Q4_K_M' }],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method: 'POST', body: JSON.stringify(body), ...as(viewer) });
      expect(res.status, path).toBe(403);
    }
    const del = await fetch(`${t.url}/api/delete`, {
      method: 'DELETE',
      body: JSON.stringify({ model: 'hf.co/acme/tiny-GGUF:Q4_K_M' }),
      ...as(viewer),
    });
    expect(del.status).toBe(403);
    const ok = await fetch(`${t.url}/api/copy`, {
      method: 'POST',
      body: JSON.stringify({ source: 'hf.co/acme/tiny-GGUF:Q4_K_M', destination: 'by-operator' }),
      ...as(operator),
    });
    expect(ok.status).toBe(200);
  });
});
