import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

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
      const created = await anthropic.messages.create({ model: 'tiny', max_tokens: 3, messages });
      expect(created.type).toBe('message');
      expect(created.usage.output_tokens).toBe(3);
      const deltas: string[] = [];
      const stream = anthropic.messages.stream({ model: 'tiny', max_tokens: 4, messages });
      stream.on('text', (text) => deltas.push(text));
      const final = await stream.finalMessage();
      expect(final.usage.output_tokens).toBe(4);
      expect(deltas.length).toBeGreaterThan(0);
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
