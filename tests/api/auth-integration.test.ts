import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { createApiToken } from '../../src/auth/tokens.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({
    auth: { mode: 'required' },
    models: { tiny: { path: fixtures.models.chat }, other: { path: fixtures.models.chat2 } },
  });
});
afterAll(async () => t?.close());

describe('auth through the real gateway (mode: required)', () => {
  it('rejects requests without a token in each API shape', async () => {
    const ollama = await fetch(`${t.url}/api/tags`);
    expect(ollama.status).toBe(401);
    expect(await ollama.json()).toEqual({ error: expect.any(String) });
    const openai = await post(`${t.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(openai.status).toBe(401);
    expect(((await openai.json()) as { error: { message: string } }).error.message).toEqual(expect.any(String));
    // Ollama's root probe stays public so clients can detect the server.
    expect((await fetch(`${t.url}/`)).status).toBe(200);
  });

  it('a bearer token works from the ollama and openai clients; its model allow-list is enforced', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'ci', role: 'viewer', models: ['tiny'] });
    const ollama = new Ollama({ host: t.url, headers: { Authorization: `Bearer ${secret}` } });
    // It sees only the models it may use, in every list.
    expect((await ollama.list()).models.map((m) => m.name)).toEqual(['tiny:latest']);
    const res = await ollama.generate({ model: 'tiny', prompt: 'hi', options: { num_predict: 2 } });
    expect(res.eval_count).toBe(2);
    await expect(ollama.generate({ model: 'other', prompt: 'hi' })).rejects.toMatchObject({ status_code: 403 });
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: secret });
    const chat = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    expect(chat.usage?.completion_tokens).toBe(2);
    await expect(
      openai.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it('every inference request is written to the request log with its token, counts and request id', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'logged', role: 'viewer' });
    const res = await post(
      `${t.url}/api/generate`,
      { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 3 } },
      { headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` } },
    );
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    await fetch(`${t.url}/api/tags`, { headers: { authorization: `Bearer ${secret}` } });
    await t.gw.store.requestLog.flush();
    const rows = (await t.gw.store.requestLog.recent({ limit: 50 })).filter((r) => r.principal === 'logged');
    // /api/tags names no model, so it is not an inference row.
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ model: 'tiny:latest', status: 200, eval_tokens: 3, request_id: requestId });
    expect(rows[0]!.prompt_tokens).toBeGreaterThan(0);
    expect(rows[0]!.total_ms).toBeGreaterThan(0);
  });

  it('lists only the allowed models in /api/tags, /api/ps and /v1/models; others see all', async () => {
    const limited = (await createApiToken(t.gw.store, { name: 'lim', role: 'viewer', models: ['other'] })).secret;
    const full = (await createApiToken(t.gw.store, { name: 'full', role: 'operator' })).secret;
    const names = async (url: string, secret: string) => {
      const body = (await (
        await fetch(`${t.url}${url}`, { headers: { authorization: `Bearer ${secret}` } })
      ).json()) as {
        models?: { name: string }[];
        data?: { id: string }[];
      };
      return (body.models?.map((m) => m.name) ?? body.data?.map((m) => m.id) ?? []).sort();
    };
    for (const model of ['tiny', 'other']) {
      await post(`${t.url}/api/generate`, { model, prompt: '' }, { headers: { authorization: `Bearer ${full}` } });
    }
    for (const url of ['/api/tags', '/api/ps', '/v1/models']) {
      expect(await names(url, limited), url).toEqual(['other:latest']);
      expect(await names(url, full), url).toEqual(['other:latest', 'tiny:latest']);
    }
    const one = await fetch(`${t.url}/v1/models/tiny`, { headers: { authorization: `Bearer ${limited}` } });
    expect(one.status).toBe(403);
  });

  it('serves /metrics only with a token', async () => {
    expect((await fetch(`${t.url}/metrics`)).status).toBe(401);
    const { secret } = await createApiToken(t.gw.store, { name: 'scraper', role: 'viewer' });
    const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${secret}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('corral_http_requests_total');
  });

  it('a revoked or made-up token is rejected', async () => {
    const bad = await fetch(`${t.url}/api/tags`, { headers: { Authorization: 'Bearer corral_notarealtoken' } });
    expect(bad.status).toBe(401);
  });
});

describe('metrics.public', () => {
  it('serves /metrics without a token when set, even in required mode', async () => {
    const open = await startGateway({ auth: { mode: 'required' }, metrics: { public: true } });
    try {
      expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${open.url}/api/tags`)).status).toBe(401);
    } finally {
      await open.close();
    }
  });
});
