import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Ollama, type Message } from 'ollama';
import OpenAI from 'openai';
import { SCRIPTED_TOOL_CALL } from '../fixtures/templates.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Tool calls produced by a real model: the scripted fixture answers every chat with a `<tool_call>` in
 * Qwen2.5's format, llama-server's own parser turns it into OpenAI tool_calls, and Corral must hand them
 * to Ollama clients with `arguments` as an object.
 */
let t: TestGateway;
let ollama: Ollama;
let openai: OpenAI;
const fixtures = inject('fixtures');
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];
const expected = [{ function: SCRIPTED_TOOL_CALL }];
const ask = { role: 'user' as const, content: 'What is the weather in Paris?' };

beforeAll(async () => {
  // No --ignore-eos: the script ends with end-of-sequence right after the call.
  t = await startGateway({
    llama_server: { args: ['-t', '1'] },
    models: { scripted: { path: fixtures.models.tools, ctx_size: 2048 }, plain: { path: fixtures.models.chat } },
  });
  ollama = new Ollama({ host: t.url });
  openai = new OpenAI({
    baseURL: `${t.url}/v1`,
    apiKey: 'unused',
    maxRetries: 0,
    defaultHeaders: { authorization: null },
  });
});
afterAll(async () => t?.close());

describe('tool calls from a real model', () => {
  it('/api/show advertises the tools capability from the template', async () => {
    expect((await ollama.show({ model: 'scripted' })).capabilities).toContain('tools');
    expect((await ollama.show({ model: 'plain' })).capabilities).not.toContain('tools');
  });

  it('ollama client chat, not streamed: tool_calls with arguments as an object, no text content', async () => {
    const res = await ollama.chat({ model: 'scripted', messages: [ask], tools, stream: false });
    expect(res.message.tool_calls).toEqual(expected);
    expect(res.message.content).toBe('');
    expect(res.done_reason).toBe('stop');
    expect(res.eval_count).toBe(4);
  });

  it('ollama client chat, streamed: the call arrives in one chunk, parsed', async () => {
    const calls = [];
    let last;
    for await (const part of await ollama.chat({ model: 'scripted', messages: [ask], tools, stream: true })) {
      if (part.message.tool_calls) calls.push(...part.message.tool_calls);
      expect(part.message.content).not.toContain('<tool_call>');
      last = part;
    }
    expect(calls).toEqual(expected);
    expect(last?.done).toBe(true);
  });

  it('the call and the tool result go back into the conversation', async () => {
    const first = await ollama.chat({ model: 'scripted', messages: [ask], tools });
    // Byte-level tokens: this result alone is 400 prompt tokens, and being new it cannot come from the cache.
    const result = 'x'.repeat(400);
    const history: Message[] = [
      ask,
      first.message,
      { role: 'tool', content: result, tool_name: 'get_weather' } as Message,
    ];
    const second = await ollama.chat({ model: 'scripted', messages: history, tools });
    expect(second.prompt_eval_count).toBeGreaterThanOrEqual(400);
    expect(second.message.tool_calls).toEqual(expected);
    const streamed = await ndjson(
      await post(`${t.url}/api/chat`, { model: 'scripted', messages: history, tools, stream: true }),
    );
    expect(streamed.at(-1)).toMatchObject({ done: true, message: { tool_calls: expected } });
  });

  it('without tools in the request the same output is plain text', async () => {
    const res = await ollama.chat({ model: 'scripted', messages: [ask] });
    expect(res.message.tool_calls).toBeUndefined();
    expect(res.message.content).toContain('<tool_call>');
    expect(JSON.parse(res.message.content.replace(/<\/?tool_call>/g, ''))).toEqual(SCRIPTED_TOOL_CALL);
  });

  it('openai client through /v1, streamed and not, with forced tool choice', async () => {
    const res = await openai.chat.completions.create({
      model: 'scripted',
      messages: [ask],
      tools: tools as never,
      tool_choice: 'required',
    });
    expect(res.choices[0]!.finish_reason).toBe('tool_calls');
    const call = res.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual(SCRIPTED_TOOL_CALL.arguments);

    let name = '';
    let args = '';
    let finish;
    for await (const c of await openai.chat.completions.create({
      model: 'scripted',
      messages: [ask],
      tools: tools as never,
      stream: true,
    })) {
      for (const tc of c.choices[0]?.delta.tool_calls ?? []) {
        name += tc.function?.name ?? '';
        args += tc.function?.arguments ?? '';
      }
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect({ name, args: JSON.parse(args), finish }).toEqual({
      name: 'get_weather',
      args: SCRIPTED_TOOL_CALL.arguments,
      finish: 'tool_calls',
    });
  });
});
