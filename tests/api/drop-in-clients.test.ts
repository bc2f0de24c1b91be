import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { bodyText } from '../helpers/runner.js';

const fixtures = inject('fixtures');
const models = { tiny: { path: fixtures.models.chat } };
const messages = [{ role: 'user' as const, content: 'Hello' }];

/**
 * This SDK sends its apiKey as "Authorization: Bearer"; earlier ones, Claude Code and other Anthropic
 * clients send it as x-api-key, as Anthropic's API documents: both ways are tried.
 */
const anthropicClients = (baseURL: string, key: string) => [
  new Anthropic({ baseURL, apiKey: key, maxRetries: 0 }),
  new Anthropic({ baseURL, apiKey: null, authToken: null, defaultHeaders: { 'x-api-key': key }, maxRetries: 0 }),
];

describe('loopback-open: clients with the placeholder keys their docs tell them to set', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ models });
  });
  afterAll(async () => t?.close());

  it('the openai client with apiKey "ollama" chats', async () => {
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'ollama' });
    const chat = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 3 });
    expect(chat.usage?.completion_tokens).toBe(3);
    const list = await openai.models.list();
    expect(list.data.map((m) => m.id)).toContain('tiny:latest');
  });

  it('the Anthropic SDK with a placeholder key creates and streams messages', async () => {
    for (const anthropic of anthropicClients(t.url, 'sk-ant-placeholder')) {
      // Greedy, so the streamed answer must be the created one, token for token.
      const ask = { model: 'tiny', max_tokens: 4, temperature: 0, messages };
      const created = await anthropic.messages.create(ask);
      expect(created.type).toBe('message');
      expect(created.usage.output_tokens).toBe(4);
      const deltas: string[] = [];
      const events: string[] = [];
      const stream = anthropic.messages.stream(ask);
      stream.on('text', (text) => deltas.push(text));
      stream.on('streamEvent', (event) => events.push(event.type));
      const final = await stream.finalMessage();
      expect(final.usage.output_tokens).toBe(4);
      expect(events[0]).toBe('message_start');
      expect(events.at(-1)).toBe('message_stop');
      // Four tokens of a random model may all be parts of one character, so the text may be empty.
      const textOf = (m: typeof created) => m.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
      expect(deltas.join('')).toBe(textOf(created));
      expect(textOf(final)).toBe(textOf(created));
    }
  });

  it('still refuses a malformed Corral token', async () => {
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'corral_not-a-real-token', maxRetries: 0 });
    await expect(openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 1 })).rejects.toMatchObject({
      status: 401,
    });
    for (const anthropic of anthropicClients(t.url, 'corral_not-a-real-token')) {
      await expect(anthropic.messages.create({ model: 'tiny', max_tokens: 1, messages })).rejects.toMatchObject({
        status: 401,
      });
    }
  });
});

describe('required mode: x-api-key carries a Corral token', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ auth: { mode: 'required' }, models });
  });
  afterAll(async () => t?.close());

  it('the Anthropic SDK works with a Corral token as its key (either header), and not with a placeholder', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'claude', role: 'viewer' });
    for (const anthropic of anthropicClients(t.url, secret)) {
      const created = await anthropic.messages.create({ model: 'tiny', max_tokens: 2, messages });
      expect(created.usage.output_tokens).toBe(2);
    }
    for (const placeholder of anthropicClients(t.url, 'sk-ant-placeholder')) {
      await expect(placeholder.messages.create({ model: 'tiny', max_tokens: 1, messages })).rejects.toMatchObject({
        status: 401,
      });
    }
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'ollama', maxRetries: 0 });
    await expect(openai.models.list()).rejects.toMatchObject({ status: 401 });
  });
});

describe('Anthropic streams whose first token is part of a character', () => {
  let t: TestGateway;
  /** After the prompt's last token ("\n") the model writes é one byte a token, then " ok". */
  const script = ['<0x0A>', '<0xC3>', '<0xA9>', '▁ok', '</s>'];
  beforeAll(async () => {
    t = await startGateway();
    await writeTinyModel(join(t.dir, 'data', 'models', 'bytes.gguf'), { name: 'bytes', seed: 7, script });
    await t.gw.catalog.refresh();
  });
  afterAll(async () => t?.close());

  const body = { model: 'bytes', max_tokens: 3, temperature: 0, messages, stream: true };

  it("llama-server's own stream lacks message_start; Corral's starts with it, as llama-server would send it", async () => {
    await post(`${t.url}/api/generate`, { model: 'bytes' });
    const runner = t.gw.scheduler.loaded().find((l) => l.name === 'bytes:latest')!.runner;
    const direct = await bodyText((await runner.client!.forward({ path: '/v1/messages', body })).body);
    expect(direct).toMatch(/^event: content_block_start/);
    const text = await (await post(`${t.url}/v1/messages`, body)).text();
    const start = text.match(/^event: message_start\ndata: (.*)\n\n/);
    const { input_tokens } = (await (await post(`${t.url}/v1/messages/count_tokens`, body)).json()) as {
      input_tokens: number;
    };
    expect(JSON.parse(start![1]!)).toMatchObject({
      type: 'message_start',
      message: {
        id: expect.stringMatching(/^msg_/),
        type: 'message',
        role: 'assistant',
        content: [],
        model: 'bytes:latest',
        usage: { input_tokens, output_tokens: 0 },
      },
    });
    expect(text.slice(start![0].length)).toBe(direct);
  });

  it('the Anthropic SDK streams it 20 times in a row', async () => {
    const anthropic = new Anthropic({ baseURL: t.url, apiKey: 'sk-ant-placeholder', maxRetries: 0 });
    for (let i = 0; i < 20; i++) {
      const stream = anthropic.messages.stream({ model: 'bytes', max_tokens: 3, temperature: 0, messages });
      const final = await stream.finalMessage();
      expect(final.content).toEqual([{ type: 'text', text: 'é ok' }]);
      expect(final.usage.input_tokens).toBeGreaterThan(0);
      expect(final.usage.output_tokens).toBe(3);
    }
  });
});
