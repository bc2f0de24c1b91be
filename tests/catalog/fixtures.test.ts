import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFixtureModels, type FixtureModels } from '../fixtures/models.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { projectorTokens } from '../fixtures/mmproj-writer.js';
import { tinyPng } from '../fixtures/png.js';

const binary =
  process.env.CORRAL_LLAMA_SERVER ??
  join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'corral/llama.cpp/v0.5.0/llama-server');
const haveBinary = existsSync(binary);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

interface Server {
  url: string;
  child: ResultPromise;
}

const children: ResultPromise[] = [];

async function start(model: string, extra: string[] = []): Promise<Server> {
  const port = await freePort();
  // --ignore-eos: random weights may sample end-of-text early, and these checks count exact tokens.
  const child = execa(
    binary,
    ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-c', '512', '--ignore-eos', ...extra],
    {
      reject: false,
      all: true,
    },
  );
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (let delay = 5; Date.now() < deadline; delay = Math.min(delay * 2, 200)) {
    if (child.exitCode !== null) throw new Error(`llama-server exited early: ${child.exitCode}`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { url, child };
    await new Promise((r) => setTimeout(r, delay));
  }
  throw new Error('llama-server did not become ready');
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('tiny GGUF fixtures', () => {
  let dir: string;
  let models: FixtureModels;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'corral-fixtures-'));
    models = await generateFixtureModels(dir);
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.allSettled(children);
    await rm(dir, { recursive: true, force: true });
  });

  it('is deterministic from the seed', async () => {
    const a = join(dir, 'a.gguf');
    const b = join(dir, 'b.gguf');
    await writeTinyModel(a, { seed: 7 });
    await writeTinyModel(b, { seed: 7 });
    const [x, y] = await Promise.all([readFile(a), readFile(b)]);
    expect(x.equals(y)).toBe(true);
    expect((await stat(models.chat)).size).toBeLessThan(1_000_000);
  });

  describe.skipIf(!haveBinary)('with a real llama-server', () => {
    it('serves completions and chat', async () => {
      const { url } = await start(models.chat);
      const done = await post(`${url}/completion`, { prompt: 'hello world', n_predict: 8, temperature: 0, seed: 1 });
      expect(done.tokens_predicted).toBe(8);
      const again = await post(`${url}/completion`, { prompt: 'hello world', n_predict: 8, temperature: 0, seed: 1 });
      expect(again.content).toBe(done.content);
      const chat = await post(`${url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 5,
      });
      const usage = chat.usage as { completion_tokens: number; prompt_tokens: number };
      expect(usage.completion_tokens).toBe(5);
      expect(usage.prompt_tokens).toBeGreaterThan(5);
      const props = (await (await fetch(`${url}/props`)).json()) as { chat_template: string };
      expect(props.chat_template).toContain('<|im_start|>');
    });

    it('serves embeddings with --embeddings --pooling mean', async () => {
      const { url } = await start(models.embed, ['--embeddings', '--pooling', 'mean']);
      const res = await fetch(`${url}/embedding`, { method: 'POST', body: JSON.stringify({ content: 'hello world' }) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { embedding: number[][] }[];
      expect(body[0]!.embedding[0]).toHaveLength(64);
    });

    it('ranks documents with the reranker started with --rerank: by their last character', async () => {
      const { url } = await start(models.rerank, ['--rerank']);
      const ranked = await post(`${url}/v1/rerank`, { query: 'which one?', documents: ['plain', 'best+', 'worst-'] });
      const results = ranked.results as { index: number; relevance_score: number }[];
      expect(results.map((r) => r.index)).toEqual([1, 0, 2]);
      expect(results.map((r) => r.relevance_score)).toEqual([
        expect.closeTo(1 / (1 + Math.exp(-2)), 3),
        expect.closeTo(0.5, 4),
        expect.closeTo(1 / (1 + Math.exp(2)), 3),
      ]);
    });

    it('serves /infill on the FIM model', async () => {
      const { url } = await start(models.fim);
      const done = await post(`${url}/infill`, { input_prefix: 'def f(', input_suffix: 'return x', n_predict: 6 });
      expect(done.tokens_predicted).toBe(6);
    });

    it('loads the projector beside chat: vision modality, a fixed token cost per image', async () => {
      const { url } = await start(models.chat, ['--mmproj', models.mmproj, '-t', '1']);
      const props = (await (await fetch(`${url}/props`)).json()) as { modalities: { vision: boolean } };
      expect(props.modalities.vision).toBe(true);
      const image = {
        type: 'image_url',
        image_url: { url: `data:image/png;base64,${tinyPng(20, 12).toString('base64')}` },
      };
      const ask = async (content: unknown[]) =>
        (
          (await post(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content }], max_tokens: 1 }))
            .usage as { prompt_tokens: number }
        ).prompt_tokens;
      const text = await ask([{ type: 'text', text: 'hi' }]);
      expect(await ask([{ type: 'text', text: 'hi' }, image])).toBe(text + projectorTokens());
    });

    it('fails to load the broken model with its own error line', async () => {
      const port = await freePort();
      const result = await execa(
        binary,
        ['-m', models.broken, '--host', '127.0.0.1', '--port', String(port), '-c', '512'],
        {
          reject: false,
          all: true,
          timeout: 30_000,
        },
      );
      expect(result.exitCode).toBe(1);
      expect(result.all).toContain('failed to load model');
    });
  });
});
