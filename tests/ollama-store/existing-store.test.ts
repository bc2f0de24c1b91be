import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { storeDigest, writeStoreModel } from '../helpers/ollama-store.js';

const fixtures = inject('fixtures');
const M = (t: string) => `application/vnd.ollama.image.${t}`;
/** Unlike any template llama-server would fall back to, so a prompt that matches it was rendered from it. */
const GO_PLAIN =
  '{{- if .System }}SYS: {{ .System }}\n{{ end }}' +
  '{{- range .Messages }}{{ if eq .Role "user" }}USER: {{ .Content }}\n{{ else if eq .Role "assistant" }}BOT: {{ .Content }}\n{{ end }}{{ end }}BOT:';
const GO_CHATML =
  '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}' +
  '{{- range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}{{ end }}' +
  '<|im_start|>assistant\n';

let store: string;
let scratch: string;
let t: TestGateway;
let ollama: Ollama;
let chat: Buffer;
let bare: Buffer;
const manifests: Record<string, Buffer> = {};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'corral-ollama-store-'));
  store = join(scratch, 'models');
  chat = await readFile(fixtures.models.chat);
  // A GGUF without a chat template: only the manifest's Go template says how to prompt it.
  await writeTinyModel(join(scratch, 'bare.gguf'), { name: 'bare', seed: 31, chatTemplate: null });
  bare = await readFile(join(scratch, 'bare.gguf'));
  const reg = 'registry.ollama.ai';
  manifests.tiny = (
    await writeStoreModel(
      store,
      [reg, 'library', 'tiny', 'latest'],
      [
        { mediaType: M('model'), body: chat },
        { mediaType: M('template'), body: GO_CHATML },
        { mediaType: M('system'), body: 'You are tiny.' },
        { mediaType: M('params'), body: '{"num_predict":4,"stop":["<|im_end|>","###"]}' },
        { mediaType: M('license'), body: 'Tiny License 1.0' },
        { mediaType: M('messages'), body: '[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]' },
      ],
    )
  ).manifest;
  manifests.user = (
    await writeStoreModel(store, [reg, 'someuser', 'Model', 'Q8'], [{ mediaType: M('model'), body: chat }])
  ).manifest;
  manifests.hf = (
    await writeStoreModel(store, ['hf.co', 'bartowski', 'Tiny-GGUF', 'Q4_K_M'], [{ mediaType: M('model'), body: chat }])
  ).manifest;
  manifests.bare = (
    await writeStoreModel(
      store,
      [reg, 'library', 'bare', 'latest'],
      [
        { mediaType: M('model'), body: bare },
        { mediaType: M('template'), body: GO_PLAIN },
        { mediaType: M('system'), body: 'Be brief.' },
      ],
    )
  ).manifest;
  await writeStoreModel(
    store,
    [reg, 'library', 'odd', 'latest'],
    [
      { mediaType: M('model'), body: bare },
      { mediaType: M('template'), body: '{{ template "inner" . }}' },
    ],
  );
  await writeStoreModel(
    store,
    [reg, 'library', 'vision', 'latest'],
    [
      { mediaType: M('model'), body: chat },
      { mediaType: M('projector'), body: await readFile(fixtures.models.mmproj) },
      { mediaType: M('adapter'), body: Buffer.from('a LoRA adapter') },
    ],
  );
  // Names a projector blob that is not there.
  await writeStoreModel(
    store,
    [reg, 'library', 'broken', 'latest'],
    [
      { mediaType: M('model'), body: chat },
      { mediaType: M('projector'), body: Buffer.from('missing projector') },
    ],
    undefined,
    { skipBlobs: [M('projector')] },
  );
  // `auto` finds the store through OLLAMA_MODELS, as Ollama does.
  t = await startGateway({ ollama_store: 'auto' }, { env: { ...process.env, OLLAMA_MODELS: store } });
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => {
  await t?.close();
  await rm(scratch, { recursive: true, force: true });
});

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(e.name);
  return out.sort();
}

describe('an existing Ollama store', () => {
  it("lists its models under Ollama's names, with Ollama's digests and sizes", async () => {
    const listed = (await ollama.list()).models;
    const byName = Object.fromEntries(listed.map((m) => [m.name, m]));
    expect(Object.keys(byName)).toEqual(
      expect.arrayContaining(['tiny:latest', 'someuser/Model:Q8', 'hf.co/bartowski/Tiny-GGUF:Q4_K_M', 'bare:latest']),
    );
    expect(byName['tiny:latest']!.digest).toBe(storeDigest(manifests.tiny!));
    expect(byName['hf.co/bartowski/Tiny-GGUF:Q4_K_M']!.digest).toBe(storeDigest(manifests.hf!));
    const m = JSON.parse(manifests.user!.toString()) as { config: { size: number }; layers: { size: number }[] };
    expect(byName['someuser/Model:Q8']!.size).toBe(m.config.size + m.layers[0]!.size);
    expect(byName['tiny:latest']!.details).toMatchObject({ family: 'llama', quantization_level: 'F32' });
  });

  it('show gives license, system, parameters, template and messages from the layers', async () => {
    const show = await ollama.show({ model: 'tiny' });
    expect(show.license).toBe('Tiny License 1.0');
    expect(show.system).toBe('You are tiny.');
    expect(show.template).toBe(GO_CHATML);
    expect(show.parameters).toMatch(/num_predict\s+4/);
    expect(show.parameters).toMatch(/stop\s+"###"/);
    expect(show.messages).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ]);
  });

  it('serves them (names case-insensitively), with the stored default options', async () => {
    const res = await ollama.chat({
      model: 'hf.co/bartowski/tiny-gguf:q4_k_m',
      messages: [{ role: 'user', content: 'hello' }],
      options: { num_predict: 2 },
    });
    expect(res.eval_count).toBe(2);
    const gen = await ollama.generate({ model: 'tiny', prompt: 'x' });
    expect(gen.eval_count).toBe(4);
  });

  it("generate puts the model's system prompt and messages before the prompt, as chat does", async () => {
    const one = { num_predict: 1 };
    const chatted = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], options: one });
    const generated = await ollama.generate({ model: 'tiny', prompt: 'x', options: one });
    expect(generated.prompt_eval_count).toBe(chatted.prompt_eval_count);
    // A continuation of a context does not repeat them (Ollama's rule).
    const next = await ollama.generate({ model: 'tiny', prompt: 'x', context: generated.context, options: one });
    expect(next.prompt_eval_count).toBeLessThan(generated.prompt_eval_count + generated.context.length);
  });

  it('renders the Go template for a GGUF that has no chat template of its own', async () => {
    const expected = 'SYS: Be brief.\nUSER: hello there\nBOT:';
    const raw = await ollama.generate({ model: 'bare', prompt: expected, raw: true, options: { num_predict: 1 } });
    const chatted = await ollama.chat({
      model: 'bare',
      messages: [{ role: 'user', content: 'hello there' }],
      options: { num_predict: 1 },
    });
    expect(chatted.prompt_eval_count).toBe(raw.prompt_eval_count);
    const generated = await ollama.generate({ model: 'bare', prompt: 'hello there', options: { num_predict: 1 } });
    expect(generated.prompt_eval_count).toBe(raw.prompt_eval_count);
    // llama-server's own fallback template would have produced a different prompt.
    const other = await ollama.generate({
      model: 'bare',
      prompt: `${expected}x`,
      raw: true,
      options: { num_predict: 1 },
    });
    expect(other.prompt_eval_count).not.toBe(raw.prompt_eval_count);
  });

  it('refuses a model whose Go template it cannot render, naming the model and why', async () => {
    const res = await post(`${t.url}/api/chat`, { model: 'odd', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/model "odd:latest" .*\{\{ template \}\}/);
  });

  it('passes projector and adapter layers to llama-server as --mmproj and --lora', async () => {
    const m = t.gw.catalog.resolve('vision')!;
    const args = t.gw.schedulable(m).launch.args;
    expect(args).toContain('--lora');
    expect(m.mmproj).toMatch(/blobs\/sha256-[0-9a-f]{64}$/);
    expect((await ollama.show({ model: 'vision' })).capabilities).toContain('vision');
  });

  it('a manifest naming a missing blob is reported and not served', async () => {
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('broken:latest');
    expect(t.gw.catalog.warnings.join('\n')).toMatch(/Ollama model broken:latest .* is broken .*projector blob/);
    const res = await post(`${t.url}/api/chat`, { model: 'broken', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/missing/);
  });

  it('is read-only: delete is refused and nothing changes; copy goes to Corral’s own store', async () => {
    const before = await allFiles(store);
    const res = await fetch(`${t.url}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: 'tiny' }) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/ollama_store_writable/);
    await ollama.copy({ source: 'tiny', destination: 'mine/tiny:copy' });
    expect(await allFiles(store)).toEqual(before);
    const copied = (await ollama.list()).models.find((m) => m.name === 'mine/tiny:copy')!;
    expect(copied.digest).toBe(storeDigest(manifests.tiny!));
    const own = join(t.dir, 'data', 'ollama');
    const blob = (root: string) => join(root, 'blobs', `sha256-${storeDigest(chat)}`);
    // Hard-linked, not copied: the same file, which survives Ollama deleting its own.
    expect((await stat(blob(own))).ino).toBe((await stat(blob(store))).ino);
    await ollama.delete({ model: 'mine/tiny:copy' });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('mine/tiny:copy');
  });

  it('picks up models added to and removed from the store while running', async () => {
    const added = await writeStoreModel(
      store,
      ['registry.ollama.ai', 'library', 'later', 'v1'],
      [{ mediaType: M('model'), body: chat }],
    );
    await vi.waitFor(async () => expect((await ollama.list()).models.map((m) => m.name)).toContain('later:v1'), {
      timeout: 10_000,
      interval: 50,
    });
    await rm(added.file);
    await vi.waitFor(async () => expect((await ollama.list()).models.map((m) => m.name)).not.toContain('later:v1'), {
      timeout: 10_000,
      interval: 50,
    });
  });
});

describe('a writable Ollama store', () => {
  it("deletes with Ollama's pruning rule: a blob goes only when no manifest references it", async () => {
    const root = join(scratch, 'writable');
    const one = await writeStoreModel(
      root,
      ['registry.ollama.ai', 'library', 'one', 'latest'],
      [
        { mediaType: M('model'), body: chat },
        { mediaType: M('system'), body: 'one' },
      ],
    );
    const two = await writeStoreModel(
      root,
      ['registry.ollama.ai', 'library', 'two', 'latest'],
      [
        { mediaType: M('model'), body: chat },
        { mediaType: M('system'), body: 'two' },
      ],
    );
    const w = await startGateway({ ollama_store: root, ollama_store_writable: true });
    try {
      const client = new Ollama({ host: w.url });
      const blob = (d: string) => join(root, 'blobs', d.replace(':', '-'));
      await client.delete({ model: 'one' });
      await expect(stat(one.file)).rejects.toThrow();
      await expect(stat(blob(one.digests[2]!))).rejects.toThrow();
      expect((await stat(blob(one.digests[1]!))).size).toBe(chat.length);
      await client.delete({ model: 'two' });
      await expect(stat(blob(two.digests[1]!))).rejects.toThrow();
      expect(await readdir(join(root, 'manifests'))).toEqual([]);
    } finally {
      await w.close();
    }
  });
});
