import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { writeTinyLora } from '../fixtures/gguf-writer.js';
import { sha } from '../helpers/registry.js';

const fixtures = inject('fixtures');

let t: TestGateway;
let ollama: Ollama;
let gguf: Buffer;
let digest: string;

const blobUrl = (base: string, d: string) => `${base}/api/blobs/${d}`;
const upload = (base: string, d: string, body: Buffer | ReadableStream, headers: Record<string, string> = {}) =>
  fetch(blobUrl(base, d), { method: 'POST', body, headers, duplex: 'half' } as RequestInit);

beforeAll(async () => {
  gguf = await readFile(fixtures.models.chat);
  digest = sha(gguf);
  t = await startGateway({});
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => t?.close());

const ownBlobs = () => readdir(join(t.dir, 'data', 'ollama', 'blobs'));

describe('blob uploads and create from files', () => {
  it('HEAD is 404 until the blob is uploaded; a wrong digest is 400 and leaves nothing behind', async () => {
    expect((await fetch(blobUrl(t.url, digest), { method: 'HEAD' })).status).toBe(404);
    const wrong = await upload(t.url, sha('something else'), gguf);
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: string }).error).toBe(
      `digest mismatch, expected "${sha('something else')}", got "${digest}"`,
    );
    expect(await ownBlobs()).toEqual([]);
    const created = await upload(t.url, digest, gguf, { 'content-type': 'application/octet-stream' });
    expect(created.status).toBe(201);
    expect((await fetch(blobUrl(t.url, digest), { method: 'HEAD' })).status).toBe(200);
    expect((await upload(t.url, digest, gguf)).status).toBe(200);
    expect(await ownBlobs()).toEqual([digest.replace(':', '-')]);
    for (const bad of ['sha256:abc', 'sha256:..%2F..%2Fetc', 'md5:0123', `sha256:${'0'.repeat(63)}/`]) {
      const res = await fetch(blobUrl(t.url, bad), { method: 'HEAD' });
      expect([400, 404], bad).toContain(res.status);
    }
    expect((await upload(t.url, 'sha256:..%2F..%2Fescape', gguf)).status).toBe(400);
  });

  it('create from the uploaded file, chat with it, copy it, delete it, with the official client', async () => {
    const statuses: string[] = [];
    // ollama-js 0.6 sends `files` as given, though its types do not list it yet.
    const request = {
      model: 'made:v1',
      files: { 'tiny.gguf': digest },
      system: 'You answer briefly.',
      parameters: { num_predict: 3, stop: ['###'] },
      license: 'Made License',
      messages: [{ role: 'user', content: 'ping' }],
      stream: true as const,
    };
    for await (const p of await ollama.create(request)) statuses.push(p.status);
    expect(statuses).toContain('parsing GGUF');
    expect(statuses).toContain(`using existing layer ${digest}`);
    expect(statuses.slice(-2)).toEqual(['writing manifest', 'success']);
    const show = await ollama.show({ model: 'made:v1' });
    expect(show.system).toBe('You answer briefly.');
    expect(show.license).toBe('Made License');
    expect(show.parameters).toMatch(/num_predict\s+3/);
    const res = await ollama.chat({ model: 'made:v1', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.eval_count).toBe(3);

    await ollama.copy({ source: 'made:v1', destination: 'made:v2' });
    const tags = (await ollama.list()).models;
    const digests = tags.filter((m) => m.name.startsWith('made:')).map((m) => m.digest);
    expect(digests).toHaveLength(2);
    expect(new Set(digests).size).toBe(1);
    await ollama.delete({ model: 'made:v1' });
    // The blob is still used by the copy.
    expect(await ownBlobs()).toContain(digest.replace(':', '-'));
    expect((await ollama.chat({ model: 'made:v2', messages: [{ role: 'user', content: 'hi' }] })).eval_count).toBe(3);
    await ollama.delete({ model: 'made:v2' });
    expect(await ownBlobs()).toEqual([]);
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('made:v2');
  });

  it('create from an Ollama-store model overrides its layers; a Go template over the GGUF’s own Jinja template is refused', async () => {
    await upload(t.url, digest, gguf);
    const base = { model: 'base', files: { 'tiny.gguf': digest } };
    await ollama.create(base);
    await ollama.create({ model: 'derived', from: 'base', system: 'derived system', parameters: { num_predict: 2 } });
    const show = await ollama.show({ model: 'derived' });
    expect(show.system).toBe('derived system');
    expect(show.details.parent_model).toBe('base:latest');
    expect((await ollama.generate({ model: 'derived', prompt: 'x' })).eval_count).toBe(2);
    // tiny.gguf carries a Jinja template: a Go template would be ignored by llama-server, so it is refused.
    const go = await post(`${t.url}/api/create`, {
      model: 'go',
      from: 'base',
      template: '{{ .Prompt }}',
      stream: false,
    });
    expect(go.status).toBe(400);
    expect(((await go.json()) as { error: string }).error).toMatch(/own Jinja chat template/);
    const jinja = '{% for m in messages %}{{ m.content }}{% endfor %}';
    await ollama.create({ model: 'jinja2', from: 'base', template: jinja });
    expect(t.gw.schedulable(t.gw.catalog.resolve('jinja2')!).launch.args).toEqual(['--chat-template', jinja]);
  });

  it('create with an adapter: llama-server runs the model with the LoRA applied', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'corral-lora-'));
    try {
      await writeTinyLora(join(dir, 'lora.gguf'));
      const lora = await readFile(join(dir, 'lora.gguf'));
      expect((await upload(t.url, sha(lora), lora)).status).toBe(201);
      await upload(t.url, digest, gguf);
      // ollama-js 0.6 sends `files` and `adapters` as given, though its types do not list them yet.
      const plainModel = { model: 'plain', files: { 'tiny.gguf': digest } };
      await ollama.create(plainModel);
      await ollama.create({ ...plainModel, model: 'tuned', adapters: { 'lora.gguf': sha(lora) } });
      const launch = t.gw.schedulable(t.gw.catalog.resolve('tuned')!).launch;
      expect(launch.args).toEqual(['--lora', expect.stringContaining(sha(lora).replace(':', '-'))]);
      const options = { num_predict: 8, temperature: 0, seed: 1 };
      const plain = await ollama.generate({ model: 'plain', prompt: 'hello world', raw: true, options });
      const tuned = await ollama.generate({ model: 'tuned', prompt: 'hello world', raw: true, options });
      expect(tuned.eval_count).toBe(8);
      // Same weights, same prompt, greedy: only the adapter can make the answers differ.
      expect(tuned.context).not.toEqual(plain.context);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bad inputs get clear errors in Ollama’s words', async () => {
    const cases: [object, number, RegExp][] = [
      [{ model: 'x', files: { '../evil.gguf': digest } }, 400, /file path must be relative/],
      [{ model: 'x', files: { '/abs.gguf': digest } }, 400, /file path must be relative/],
      [{ model: 'x', files: { 'a.gguf': 'sha256:nothex' } }, 400, /invalid digest format/],
      [{ model: 'x', files: { 'a.gguf': sha('never uploaded') } }, 400, /not found: upload it first/],
      [{ model: 'x' }, 400, /neither 'from' or 'files' was specified/],
      [{ model: 'bad/name/with/parts:x', files: { 'a.gguf': digest } }, 400, /invalid model name/],
      [{ model: 'x', from: 'nope' }, 404, /model "nope" not found/],
    ];
    for (const [body, status, error] of cases) {
      const res = await post(`${t.url}/api/create`, { ...body, stream: false });
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(((await res.json()) as { error: string }).error).toMatch(error);
    }
  });

  it('a streamed create that fails mid-way ends with an error line', async () => {
    const notGguf = Buffer.from('not a gguf at all');
    await upload(t.url, sha(notGguf), notGguf);
    const res = await post(`${t.url}/api/create`, { model: 'nogguf', files: { 'x.gguf': sha(notGguf) } });
    const lines = await ndjson(res);
    expect(lines.at(-1)).toEqual({ error: 'supplied file was not in GGUF format' });
  });
});

describe('uploads on a short disk', () => {
  it('507 when the free space (less the reserve) cannot hold the announced blob', async () => {
    const tight = await startGateway({ disk_reserve: '1000TB' });
    try {
      const res = await upload(tight.url, digest, gguf);
      expect(res.status).toBe(507);
      expect(((await res.json()) as { error: string }).error).toMatch(/not enough disk space/);
      expect(await readdir(join(tight.dir, 'data', 'ollama', 'blobs'))).toEqual([]);
    } finally {
      await tight.close();
    }
  });

  // A real full disk needs a filesystem of our own: a 1 MiB tmpfs (root can mount one).
  const mounted = process.getuid?.() === 0;
  it.skipIf(!mounted)('507 when the disk fills during a streamed upload, with no partial file left', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'corral-tmpfs-'));
    const store = join(scratch, 'store');
    await mkdir(store);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', store]);
    const w = await startGateway({ ollama_store: store, ollama_store_writable: true, disk_reserve: 0 });
    try {
      const big = Buffer.alloc(3 * 1024 * 1024, 9);
      // No Content-Length: the size is unknown until the disk runs out.
      const body = new ReadableStream({
        start(c) {
          for (let i = 0; i < big.length; i += 64 * 1024) c.enqueue(big.subarray(i, i + 64 * 1024));
          c.close();
        },
      });
      const res = await upload(w.url, sha(big), body);
      expect(res.status).toBe(507);
      expect(((await res.json()) as { error: string }).error).toMatch(/full/);
      expect(await readdir(join(store, 'blobs'))).toEqual([]);
      const announced = await upload(w.url, sha(big), big);
      expect(announced.status).toBe(507);
    } finally {
      await w.close();
      execFileSync('umount', [store]);
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
