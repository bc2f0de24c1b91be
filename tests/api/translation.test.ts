import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { UpstreamError } from '../../src/errors.js';
import type { ChatRequest, CompletionRequest, GenerationEvent, InfillRequest } from '../../src/llama/client.js';
import { startFakeGateway, type FakeGateway } from '../helpers/fake-gateway.js';
import { answer, type LlamaScript } from '../helpers/fake-llama.js';
import { ndjson, post } from '../helpers/gateway.js';

/**
 * Ollama ⇄ llama-server translation with a scripted client: what the routes ask of a child for each
 * Ollama request, and how its events come back as Ollama lines. The same paths run end to end against
 * real children in ollama-basics, ollama-compat, tool-calls and vision.
 */
const fixtures = inject('fixtures');
let t: FakeGateway;
/** The next generation's events, set per test. */
let next: GenerationEvent[] | (() => AsyncIterable<GenerationEvent>) = answer(['a', 'b']);
const play = () => (typeof next === 'function' ? next() : next);

beforeAll(async () => {
  const script: LlamaScript = { chat: play, complete: play, infill: play };
  t = await startFakeGateway(
    {
      models: {
        tiny: { path: fixtures.models.chat, options: { temperature: 0.5, top_k: 7 }, system: 'be brief' },
        seeing: { path: fixtures.models.chat, mmproj: fixtures.models.mmproj },
        fim: { path: fixtures.models.fim },
        vectors: { path: fixtures.models.embed, embedding: true },
      },
    },
    { script: () => script },
  );
});
afterAll(async () => t?.close());

const chat = (body: object) => post(`${t.url}/api/chat`, { model: 'tiny', stream: false, ...body });
const generate = (body: object) => post(`${t.url}/api/generate`, { model: 'tiny', stream: false, ...body });
const lastChat = (model = 'tiny:latest') => t.client(model).requests<ChatRequest>('chat').at(-1)!;
const hi = [{ role: 'user', content: 'hi' }];

describe('what a chat asks of llama-server', () => {
  it('messages with the model system prompt, options over model defaults, tools, think and format', async () => {
    next = answer(['ok']);
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const res = await chat({
      messages: [
        ...hi,
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] },
        { role: 'tool', content: '42', tool_name: 'f' },
        { role: 'assistant', content: 'so', thinking: 'hmm' },
      ],
      options: { temperature: 0, num_predict: 5, stop: 'END', seed: 3, num_keep: 2, unknown_option: true },
      tools,
      think: true,
      format: 'json',
    });
    expect(res.status).toBe(200);
    expect(lastChat()).toEqual({
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: '', toolCalls: [{ name: 'f', arguments: { a: 1 } }] },
        { role: 'tool', content: '42', toolName: 'f' },
        { role: 'assistant', content: 'so', thinking: 'hmm' },
      ],
      sampling: { temperature: 0, topK: 7, maxTokens: 5, stop: ['END'], seed: 3, keep: 2 },
      tools,
      think: true,
      format: { json: 'any' },
    });
  });

  it('a schema format, no tools: the format travels as a schema; the system message of the request wins', async () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    await chat({ messages: [{ role: 'system', content: 'mine' }, ...hi], format: schema });
    expect(lastChat()).toMatchObject({
      messages: [{ role: 'system', content: 'mine' }, { role: 'user' }],
      format: { json: 'schema', schema },
      tools: undefined,
    });
  });

  it('images go to a model with a projector; others refuse them with 400 before anything runs', async () => {
    await chat({ model: 'seeing', messages: [{ role: 'user', content: 'look', images: ['aGk='] }] });
    expect(lastChat('seeing:latest').messages[0]!.images).toEqual(['aGk=']);
    const refused = await chat({ messages: [{ role: 'user', content: 'look', images: ['aGk='] }] });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(/does not support images/);
  });

  it('bad options and formats are 400s in Ollama shape; num_predict below -2 means unlimited', async () => {
    const bad = await chat({ messages: hi, options: { temperature: 'hot' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'invalid options: "temperature" must be a number, got "hot"' });
    const format = await chat({ messages: hi, format: 42 });
    expect(format.status).toBe(400);
    expect(((await format.json()) as { error: string }).error).toMatch(/invalid value for "format"/);
    await chat({ messages: hi, options: { num_predict: -5 } });
    expect(lastChat().sampling.maxTokens).toBe(-1);
  });
});

describe('how llama-server events come back', () => {
  it('tool calls: arguments as an object, streamed in the final line and whole', async () => {
    next = answer([], { toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
    const whole = (await (await chat({ messages: hi })).json()) as { message: Record<string, unknown> };
    expect(whole.message).toEqual({
      role: 'assistant',
      content: '',
      tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
    });
    const lines = await ndjson(await chat({ messages: hi, stream: true }));
    expect(lines.at(-1)).toMatchObject({ done: true, message: { tool_calls: whole.message.tool_calls } });
  });

  it('thinking: its own field in each streamed line, joined in a whole answer', async () => {
    next = [{ kind: 'delta', thinking: 'let me' }, { kind: 'delta', thinking: ' see' }, ...answer(['4'])];
    const lines = await ndjson(await chat({ messages: hi, stream: true, think: true }));
    expect(lines.slice(0, 3).map((l) => l.message)).toEqual([
      { role: 'assistant', content: '', thinking: 'let me' },
      { role: 'assistant', content: '', thinking: ' see' },
      { role: 'assistant', content: '4' },
    ]);
    const whole = (await (await chat({ messages: hi, think: true })).json()) as { message: object };
    expect(whole.message).toEqual({ role: 'assistant', content: '4', thinking: 'let me see' });
  });

  it('statistics: llama-server milliseconds become Ollama nanoseconds; cached prompt tokens count', async () => {
    next = answer(['x'], {
      reason: 'length',
      timings: { prompt_n: 4, cache_n: 6, prompt_ms: 1.2345678, predicted_n: 9, predicted_ms: 20.5 },
    });
    const res = (await (await generate({ prompt: 'p', raw: true })).json()) as Record<string, number | string>;
    expect(res).toMatchObject({
      done_reason: 'length',
      prompt_eval_count: 10,
      prompt_eval_duration: 1_234_568,
      eval_count: 9,
      eval_duration: 20_500_000,
      load_duration: expect.any(Number),
    });
    expect(res.total_duration).toBeGreaterThan(0);
    expect(Number.isInteger(res.total_duration)).toBe(true);
  });

  it('an upstream refusal before the first event keeps its status; a failure mid-way ends with an error line', async () => {
    next = async function* () {
      yield* [];
      throw new UpstreamError('the request exceeds the available context size', 400);
    };
    const refused = await chat({ messages: hi, stream: true });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'the request exceeds the available context size' });
    next = async function* () {
      yield { kind: 'delta', content: 'a' };
      throw new Error('llama-server closed the connection before the answer was complete');
    };
    const lines = await ndjson(await chat({ messages: hi, stream: true }));
    expect(lines).toEqual([
      expect.objectContaining({ message: { role: 'assistant', content: 'a' }, done: false }),
      { error: 'llama-server closed the connection before the answer was complete' },
    ]);
  });
});

describe('what a generate asks of llama-server, and its context', () => {
  it('templated by the model, completed with token ids returned; context = prompt ids + generated ids', async () => {
    next = answer(['b'], { tokens: [98] });
    const res = (await (await generate({ prompt: 'a' })).json()) as { context: number[] };
    const client = t.client('tiny:latest');
    const template = client.calls.filter((c) => c.method === 'applyTemplate').at(-1)!;
    expect(template.args[0]).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'a' },
    ]);
    const completion = client.requests<CompletionRequest>('complete').at(-1)!;
    expect(completion).toMatchObject({ prompt: '<system>be brief<user>a', returnTokens: true });
    // The fake tokenizes one id per character, with BOS (1) for a fresh prompt.
    expect(res.context).toEqual([1, ...[...'<system>be brief<user>a'].map((c) => c.charCodeAt(0)), 98]);
  });

  it('a continuation sends the given ids before the text; missing ids re-tokenize prompt and answer together', async () => {
    next = answer(['é'], { tokens: [], answer: 'é' });
    const res = (await (await generate({ prompt: 'x', raw: true, context: [5, 6] })).json()) as { context: number[] };
    expect(t.client('tiny:latest').requests<CompletionRequest>('complete').at(-1)!.prompt).toEqual([5, 6, 'x']);
    expect(res.context).toEqual([5, 6, 'x'.charCodeAt(0), 'é'.charCodeAt(0)]);
  });

  it('suffix goes to infill with the prompt as prefix; think goes to chat', async () => {
    next = answer(['m']);
    await generate({ model: 'fim', prompt: 'def f(', suffix: '):', format: 'json' });
    expect(t.client('fim:latest').requests<InfillRequest>('infill').at(-1)).toMatchObject({
      prefix: 'def f(',
      suffix: '):',
      format: { json: 'any' },
      returnTokens: true,
    });
    await generate({ prompt: 'why', think: false, system: 'sys' });
    expect(lastChat()).toMatchObject({
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'why' },
      ],
      think: false,
    });
  });
});

describe('embeddings', () => {
  it('inputs longer than a slot are cut to fit as token ids when truncating; vectors are unit length', async () => {
    const long = 'x'.repeat(300);
    const res = (await (await post(`${t.url}/api/embed`, { model: 'vectors', input: ['short', long] })).json()) as {
      embeddings: number[][];
    };
    const sent = t
      .client('vectors:latest')
      .calls.filter((c) => c.method === 'embed')
      .at(-1)!.args[0] as unknown[];
    expect(sent[0]).toBe('short');
    expect(sent[1]).toEqual(Array(255).fill('x'.charCodeAt(0)));
    expect(res.embeddings).toEqual([
      [0.6, 0.8],
      [0.6, 0.8],
    ]);
    const refused = await post(`${t.url}/api/embed`, { model: 'vectors', input: long, truncate: false });
    expect(refused.status).toBe(400);
  });
});
