import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Ollama } from 'ollama';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let ollama: Ollama;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => t?.close());

describe('the official ollama npm client against Corral', () => {
  it('list and show', async () => {
    const list = await ollama.list();
    expect(list.models.map((m) => m.name)).toContain('tiny:latest');
    const show = await ollama.show({ model: 'tiny' });
    expect(show.details.family).toBe('llama');
    expect(show.capabilities).toContain('completion');
  });

  it('generate, streamed and not', async () => {
    const full = await ollama.generate({
      model: 'tiny',
      prompt: 'hi',
      options: { num_predict: 5, temperature: 0, seed: 1 },
    });
    expect(full.done).toBe(true);
    expect(full.eval_count).toBe(5);
    let text = '';
    let final;
    for await (const part of await ollama.generate({
      model: 'tiny',
      prompt: 'hi',
      stream: true,
      options: { num_predict: 5, temperature: 0, seed: 1 },
    })) {
      text += part.response;
      if (part.done) final = part;
    }
    expect(final?.eval_count).toBe(5);
    expect(text).toBe(full.response);
  });

  it('chat, streamed and not, then ps', async () => {
    // Greedy and seeded: with default sampling the random-weight model can draw only tokens that
    // decode to no text, leaving a stream with no content lines to check.
    const options = { num_predict: 4, temperature: 0, seed: 1 };
    const res = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'hello' }], options });
    expect(res.message.role).toBe('assistant');
    expect(res.eval_count).toBe(4);
    expect(res.message.content).not.toBe('');
    let chunks = 0;
    let text = '';
    for await (const part of await ollama.chat({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
      options,
    })) {
      if (!part.done) chunks++;
      text += part.message.content;
    }
    expect(chunks).toBeGreaterThan(0);
    expect(text).toBe(res.message.content);
    const ps = await ollama.ps();
    expect(ps.models[0]?.name).toBe('tiny:latest');
    expect(new Date(ps.models[0]!.expires_at).getTime()).toBeGreaterThan(Date.now());
  });

  it('errors surface as ResponseError with status and message', async () => {
    await expect(ollama.generate({ model: 'missing', prompt: 'x' })).rejects.toMatchObject({
      status_code: 404,
      error: expect.stringContaining('not found'),
    });
  });

  it('version', async () => {
    expect((await ollama.version()).version).toMatch(/^\d+\./);
  });
});
