import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * llama-server's own endpoints and the translated /v1 ones, routed by `model` to real children: the
 * tiny chat, FIM, embedding and reranker fixtures.
 */
const fixtures = inject('fixtures');
const models = {
  tiny: { path: fixtures.models.chat },
  fim: { path: fixtures.models.fim },
  embed: { path: fixtures.models.embed },
  rerank: { path: fixtures.models.rerank },
  seeing: { path: fixtures.models.chat, mmproj: fixtures.models.mmproj },
};
const σ = (x: number) => 1 / (1 + Math.exp(-x));

let t: TestGateway;
beforeAll(async () => {
  t = await startGateway({ models });
});
afterAll(async () => t?.close());

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T;
const errorOf = async (res: Response) => (await json<{ error: { message: string } }>(res)).error.message;

describe('rerank', () => {
  const documents = ['a plain one', 'the best+', 'the worst-'];

  it('ranks documents with a reranker, on /v1/rerank and the aliases llama-server accepts', async () => {
    for (const path of ['/v1/rerank', '/rerank', '/v1/reranking']) {
      const res = await post(`${t.url}${path}`, { model: 'rerank', query: 'which is best?', documents });
      expect(res.status).toBe(200);
      const body = await json<{ model: string; results: { index: number; relevance_score: number }[] }>(res);
      expect(body.model).toBe('rerank:latest');
      expect(body.results.map((r) => r.index)).toEqual([1, 0, 2]);
      expect(body.results[0]!.relevance_score).toBeCloseTo(σ(2), 3);
      expect(body.results[2]!.relevance_score).toBeCloseTo(σ(-2), 3);
    }
    const top = await json<{ results: unknown[] }>(
      await post(`${t.url}/v1/rerank`, { model: 'rerank', query: 'q', documents, top_n: 1 }),
    );
    expect(top.results).toHaveLength(1);
    const loaded = t.gw.scheduler.loaded().find((l) => l.name === 'rerank:latest')!;
    expect(loaded.runner.command).toContain('--rerank');
  });

  it('a model that cannot rerank gets 400 naming it and why; a reranker neither embeds nor generates', async () => {
    const res = await post(`${t.url}/v1/rerank`, { model: 'tiny', query: 'q', documents });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatch(/model "tiny:latest" cannot rerank: its GGUF's pooling type is not set/);
    const embed = await post(`${t.url}/api/embed`, { model: 'rerank', input: 'x' });
    expect(embed.status).toBe(400);
    expect(((await embed.json()) as { error: string }).error).toMatch(/"rerank:latest" is a reranker/);
    const chat = await post(`${t.url}/v1/chat/completions`, {
      model: 'rerank',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(chat.status).toBe(400);
    const generate = await post(`${t.url}/api/generate`, { model: 'rerank', prompt: 'x' });
    expect(generate.status).toBe(400);
    expect(((await generate.json()) as { error: string }).error).toMatch(/is a reranker: .* cannot generate text/);
    // Loading and unloading it through the Ollama API (what `ollama stop` sends) still works.
    const unload = await post(`${t.url}/api/generate`, { model: 'rerank', keep_alive: 0 });
    expect(((await unload.json()) as { done_reason: string }).done_reason).toBe('unload');
    const bad = await post(`${t.url}/v1/rerank`, { model: 'rerank', query: 'q', documents: [] });
    expect(bad.status).toBe(400);
  });
});

describe('fill in the middle', () => {
  it('/infill answers on a model with FIM tokens, streamed or not; 400 for one without', async () => {
    const done = await json<{ tokens_predicted: number; prompt: string }>(
      await post(`${t.url}/infill`, { model: 'fim', input_prefix: 'def f(', input_suffix: 'return x', n_predict: 3 }),
    );
    expect(done.tokens_predicted).toBe(3);
    expect(done.prompt).toContain('<|fim_prefix|>');
    const streamed = await post(`${t.url}/infill`, {
      model: 'fim',
      input_prefix: 'a',
      input_suffix: 'b',
      n_predict: 2,
      stream: true,
    });
    expect(streamed.headers.get('content-type')).toContain('text/event-stream');
    // Pieces that end inside a UTF-8 character are held back, so the events can be fewer than the tokens.
    const last = (await streamed.text())
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .at(-1)!;
    expect(JSON.parse(last.slice(6))).toMatchObject({ stop: true, tokens_predicted: 2 });
    const refused = await post(`${t.url}/infill`, { model: 'tiny', input_prefix: 'a', input_suffix: 'b' });
    expect(refused.status).toBe(400);
    expect(await errorOf(refused)).toMatch(/"tiny:latest" does not support insert/);
  });

  it('/v1/completions with a suffix fills in the middle through the OpenAI client', async () => {
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'ollama', maxRetries: 0 });
    const done = await openai.completions.create({ model: 'fim', prompt: 'def f(', suffix: 'return x', max_tokens: 3 });
    expect(done.object).toBe('text_completion');
    expect(done.usage?.completion_tokens).toBe(3);
    expect(done.usage?.prompt_tokens).toBeGreaterThan(3);
    const chunks = [];
    const stream = await openai.completions.create({
      model: 'fim',
      prompt: 'x',
      suffix: 'y',
      max_tokens: 2,
      stream: true,
    });
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');
    const refused = openai.completions.create({ model: 'tiny', prompt: 'a', suffix: 'b', max_tokens: 1 });
    await expect(refused).rejects.toMatchObject({ status: 400 });
  });
});

describe('tokens and templates', () => {
  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi there' },
  ];

  it('count_tokens matches /tokenize of the same messages rendered by the template', async () => {
    const { prompt } = await json<{ prompt: string }>(
      await post(`${t.url}/apply-template`, { model: 'tiny', messages }),
    );
    expect(prompt).toContain('<|im_start|>system\nbe brief<|im_end|>');
    const { tokens } = await json<{ tokens: number[] }>(
      await post(`${t.url}/tokenize`, { model: 'tiny', content: prompt, add_special: true }),
    );
    const counted = await post(`${t.url}/v1/messages/count_tokens`, {
      model: 'tiny',
      system: 'be brief',
      messages: [{ role: 'user', content: 'hi there' }],
    });
    expect(counted.status).toBe(200);
    expect(await json(counted)).toEqual({ input_tokens: tokens.length });
  });

  it('/tokenize and /detokenize take the text there and back', async () => {
    const { tokens } = await json<{ tokens: number[] }>(
      await post(`${t.url}/tokenize`, { model: 'fim', content: 'hello' }),
    );
    const { content } = await json<{ content: string }>(await post(`${t.url}/detokenize`, { model: 'fim', tokens }));
    expect(content.trim()).toBe('hello');
  });
});

describe('what each model can do', () => {
  it('/api/tags and /v1/models list capabilities in Ollama names, "rerank" for rerankers', async () => {
    const tags = await json<{ models: { name: string; capabilities: string[] }[] }>(await fetch(`${t.url}/api/tags`));
    const caps = Object.fromEntries(tags.models.map((m) => [m.name, m.capabilities]));
    expect(caps).toMatchObject({
      'tiny:latest': ['completion'],
      'fim:latest': ['completion', 'insert'],
      'embed:latest': ['embedding'],
      'rerank:latest': ['rerank'],
      'seeing:latest': ['completion', 'vision'],
    });
    const list = await json<{ data: { id: string; capabilities: string[] }[] }>(await fetch(`${t.url}/v1/models`));
    expect(Object.fromEntries(list.data.map((m) => [m.id, m.capabilities]))).toEqual(caps);
  });
});

describe('requests that name no model', () => {
  it('use the only loaded model, else 400 naming the missing field', async () => {
    const g = await startGateway({ models: { tiny: models.tiny, fim: models.fim } });
    try {
      const none = await post(`${g.url}/tokenize`, { content: 'hi' });
      expect(none.status).toBe(400);
      expect(await errorOf(none)).toMatch(/missing required field "model": 0 models are loaded/);
      await post(`${g.url}/api/generate`, { model: 'fim' });
      const only = await post(`${g.url}/infill`, { input_prefix: 'a', input_suffix: 'b', n_predict: 1 });
      expect(only.status).toBe(200);
      expect((await json(only)).model).toBe('fim:latest');
      await post(`${g.url}/api/generate`, { model: 'tiny' });
      expect((await post(`${g.url}/tokenize`, { content: 'hi' })).status).toBe(400);
    } finally {
      await g.close();
    }
  });

  it('use default_model when it is configured', async () => {
    const g = await startGateway({ models: { tiny: models.tiny, fim: models.fim }, default_model: 'fim' });
    try {
      const res = await post(`${g.url}/v1/completions`, { prompt: 'a', suffix: 'b', max_tokens: 1 });
      expect(res.status).toBe(200);
      expect((await json(res)).model).toBe('fim:latest');
      // The Ollama API names its model, as Ollama requires.
      expect((await post(`${g.url}/api/generate`, { prompt: 'x' })).status).toBe(400);
    } finally {
      await g.close();
    }
  });
});

describe('allow-lists, rate limits, metrics and the request log', () => {
  /** One valid request per route, for a model the token below may not use. */
  const ROUTES: [string, Record<string, unknown>][] = [
    ['/infill', { model: 'fim', input_prefix: 'a', input_suffix: 'b', n_predict: 1 }],
    ['/v1/rerank', { model: 'rerank', query: 'q', documents: ['a'] }],
    ['/rerank', { model: 'rerank', query: 'q', documents: ['a'] }],
    ['/v1/reranking', { model: 'rerank', query: 'q', documents: ['a'] }],
    ['/reranking', { model: 'rerank', query: 'q', documents: ['a'] }],
    ['/v1/messages/count_tokens', { model: 'fim', messages: [{ role: 'user', content: 'x' }] }],
    ['/tokenize', { model: 'fim', content: 'x' }],
    ['/detokenize', { model: 'fim', tokens: [300] }],
    ['/apply-template', { model: 'fim', messages: [{ role: 'user', content: 'x' }] }],
    ['/v1/completions', { model: 'fim', prompt: 'a', suffix: 'b', max_tokens: 1 }],
    ['/v1/embeddings', { model: 'embed', input: 'x' }],
  ];

  it('every route refuses a token whose allow-list lacks the model, and serves one whose list has it', async () => {
    const { secret: narrow } = await createApiToken(t.gw.store, { name: 'narrow', role: 'viewer', models: ['tiny'] });
    const { secret: wide } = await createApiToken(t.gw.store, {
      name: 'wide',
      role: 'viewer',
      models: ['tiny', 'fim', 'rerank', 'embed'],
    });
    for (const [path, body] of ROUTES) {
      const refused = await post(`${t.url}${path}`, body, { headers: { authorization: `Bearer ${narrow}` } });
      expect([path, refused.status]).toEqual([path, 403]);
      expect(await errorOf(refused)).toMatch(/is not allowed for this token/);
      const served = await post(`${t.url}${path}`, body, { headers: { authorization: `Bearer ${wide}` } });
      expect([path, served.status]).toEqual([path, 200]);
    }
  });

  it('a token over its rate limit gets 429', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'slow', role: 'viewer', rpm: 1 });
    const headers = { authorization: `Bearer ${secret}` };
    expect((await post(`${t.url}/tokenize`, { model: 'tiny', content: 'x' }, { headers })).status).toBe(200);
    expect((await post(`${t.url}/tokenize`, { model: 'tiny', content: 'x' }, { headers })).status).toBe(429);
  });

  it('requests are counted per model and logged with their tokens', async () => {
    await post(`${t.url}/v1/rerank`, { model: 'rerank', query: 'q', documents: ['a+', 'b'] });
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(
      /corral_http_requests_total\{[^}]*route="\/v1\/rerank"[^}]*model="rerank:latest"[^}]*\} \d/,
    );
    expect(metrics).toMatch(/corral_http_requests_total\{[^}]*route="\/infill"[^}]*model="fim:latest"/);
    const rows = await t.gw.store.requestLog.recent({ model: 'rerank:latest', limit: 5 });
    expect(rows.find((r) => r.endpoint === '/v1/rerank' && r.status === 200)?.prompt_tokens).toBeGreaterThan(0);
  });
});
