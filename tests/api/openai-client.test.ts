import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import OpenAI from 'openai';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let openai: OpenAI;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat }, embed: { path: fixtures.models.embed } } });
  // Loopback clients need no token (auth mode loopback-open); a bogus one would be rejected, so send none.
  openai = new OpenAI({
    baseURL: `${t.url}/v1`,
    apiKey: 'unused',
    maxRetries: 0,
    defaultHeaders: { authorization: null },
  });
});
afterAll(async () => t?.close());

describe('the official openai npm client against Corral', () => {
  it('models', async () => {
    const ids = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['tiny:latest', 'embed:latest']));
    expect((await openai.models.retrieve('tiny')).id).toBe('tiny:latest');
  });

  it('chat completions, not streamed', async () => {
    const res = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
    });
    expect(res.choices[0]!.message.role).toBe('assistant');
    expect(res.usage?.completion_tokens).toBe(4);
  });

  it("a non-streamed answer keeps llama-server's Content-Length; a stream is chunked and formats no stack trace when its connection closes", async () => {
    const whole = await post(`${t.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    const text = await whole.text();
    expect(whole.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(whole.headers.get('transfer-encoding')).toBeNull();
    expect(JSON.parse(text).usage.completion_tokens).toBe(2);
    // llama-server closes a streamed answer's connection, which undici ends with an informational
    // error; its stack trace must not be formatted (the gateway runs in this process).
    const formatted: string[] = [];
    const previous = Error.prepareStackTrace;
    Error.prepareStackTrace = (err: Error & { code?: string }, frames) => {
      formatted.push(err.code ?? err.name);
      return previous
        ? previous(err, frames)
        : `${err.name}: ${err.message}\n${frames.map((f) => `    at ${String(f)}`).join('\n')}`;
    };
    try {
      const streamed = await post(`${t.url}/v1/chat/completions`, {
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
        stream: true,
      });
      expect(streamed.headers.get('transfer-encoding')).toBe('chunked');
      expect(await streamed.text()).toMatch(/data: \[DONE\]\n\n$/);
      await new Promise((r) => setImmediate(r));
    } finally {
      Error.prepareStackTrace = previous;
    }
    expect(formatted.filter((c) => c === 'UND_ERR_INFO')).toEqual([]);
  });

  it('chat completions, streamed as SSE chunk by chunk', async () => {
    const stream = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    let chunks = 0;
    let finish: string | null | undefined;
    let usage;
    for await (const c of stream) {
      chunks++;
      finish = c.choices[0]?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    // Random byte tokens that form incomplete UTF-8 are held back and merged, so count tokens, not chunks.
    expect(chunks).toBeGreaterThan(1);
    expect(usage?.completion_tokens).toBe(6);
    expect(finish).toBe('length');
  });

  it('completions and embeddings', async () => {
    const c = await openai.completions.create({ model: 'tiny', prompt: 'hello', max_tokens: 3 });
    expect(c.usage?.completion_tokens).toBe(3);
    const e = await openai.embeddings.create({ model: 'embed', input: ['a', 'b'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]!.embedding.length).toBeGreaterThan(8);
  });

  it('a derived model keeps its defaults for OpenAI clients; the request still wins', async () => {
    const created = await post(`${t.url}/api/create`, {
      model: 'short',
      from: 'tiny',
      system: 'Be brief.',
      parameters: { num_predict: 3 },
      stream: false,
    });
    expect(created.status).toBe(200);
    const res = await openai.chat.completions.create({ model: 'short', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.usage?.completion_tokens).toBe(3);
    const base = await openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    });
    const withSystem = await openai.chat.completions.create({
      model: 'short',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    });
    expect(withSystem.usage?.completion_tokens).toBe(1);
    expect(withSystem.usage!.prompt_tokens).toBeGreaterThan(base.usage!.prompt_tokens);
  });

  it('errors are OpenAI-shaped', async () => {
    await expect(
      openai.chat.completions.create({ model: 'missing', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    // A path that does not exist is not a missing model.
    const unknown = await fetch(`${t.url}/v1/nonexistent`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { message: 'GET /v1/nonexistent not found', type: 'not_found_error', code: null },
    });
    const bad = await post(`${t.url}/v1/chat/completions`, { model: 'tiny', messages: 'x' });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('messages');
    await expect(openai.embeddings.create({ model: 'tiny', input: 'x', dimensions: 4096 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('dimensions'),
    });
  });
});
