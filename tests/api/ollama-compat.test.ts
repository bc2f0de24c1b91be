import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { OllamaEmbeddings } from '@langchain/ollama';
import { Ollama } from 'ollama';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { bodyText } from '../helpers/runner.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';

/** A Hermes/Qwen-style Jinja template: llama-server recognises its tool calls and <think> blocks. */
export const TOOL_TEMPLATE = `{%- if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{%- endif %}{%- for message in messages %}{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n{%- for tc in message.tool_calls %}<tool_call>\n{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}\n</tool_call>{%- endfor %}<|im_end|>\n{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response><|im_end|>\n{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endif %}{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{%- endif %}{%- endif %}`;

let t: TestGateway;
let ollama: Ollama;
const fixtures = inject('fixtures');
const norm = (v: number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

beforeAll(async () => {
  t = await startGateway({
    models: {
      tiny: { path: fixtures.models.chat },
      embed: { path: fixtures.models.embed },
      fim: { path: fixtures.models.fim },
    },
  });
  await writeTinyModel(join(t.dir, 'data', 'models', 'tooly.gguf'), {
    name: 'tooly',
    seed: 5,
    chatTemplate: TOOL_TEMPLATE,
    extraTokens: ['<think>', '</think>', '<tool_call>', '</tool_call>'],
  });
  await t.gw.catalog.refresh();
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => t?.close());

describe('embeddings', () => {
  it('embed: string and array input, unit vectors, dimensions', async () => {
    const one = await ollama.embed({ model: 'embed', input: 'hello world' });
    expect(one.embeddings).toHaveLength(1);
    expect(norm(one.embeddings[0]!)).toBeCloseTo(1, 5);
    const many = await ollama.embed({ model: 'embed', input: ['hello', 'world', 'hello'] });
    expect(many.embeddings).toHaveLength(3);
    expect(many.embeddings[0]).toEqual(many.embeddings[2]);
    expect(many.prompt_eval_count).toBeGreaterThan(0);
    const cut = await ollama.embed({ model: 'embed', input: 'hello world', dimensions: 16 });
    expect(cut.embeddings[0]).toHaveLength(16);
    expect(norm(cut.embeddings[0]!)).toBeCloseTo(1, 5);
  });

  it('embed: truncate false with an over-long input is a 400, truncate true cuts it', async () => {
    const long = 'hello world '.repeat(400);
    const res = await post(`${t.url}/api/embed`, { model: 'embed', input: long, truncate: false });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/exceeds the context length/);
    const ok = await ollama.embed({ model: 'embed', input: long });
    expect(ok.embeddings).toHaveLength(1);
  });

  it('legacy embeddings, and 400 for a bad field or more dimensions than the model has', async () => {
    const legacy = await ollama.embeddings({ model: 'embed', prompt: 'hello' });
    expect(legacy.embedding.length).toBeGreaterThan(8);
    const bad = await post(`${t.url}/api/embed`, { model: 'embed', input: 5 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('input');
    await expect(ollama.embed({ model: 'embed', input: 'x', dimensions: 65 })).rejects.toMatchObject({
      status_code: 400,
      error: expect.stringMatching(/model "embed:latest" makes 64-dimensional embeddings/),
    });
  });

  it('a chat model embeds, as with Ollama: an embedding child of its GGUF, budgeted and unloaded like any other', async () => {
    const before = t.gw.scheduler.status().memoryUsedBytes;
    const res = await ollama.embed({ model: 'tiny', input: ['hello', 'world'] });
    expect(res.embeddings).toHaveLength(2);
    expect(res.embeddings[0]).toHaveLength(64);
    expect(norm(res.embeddings[0]!)).toBeCloseTo(1, 5);
    expect(res.embeddings[0]).not.toEqual(res.embeddings[1]);
    const child = t.gw.scheduler.loaded().find((l) => l.name === 'tiny:latest (embeddings)')!;
    expect(child.runner.command.join(' ')).toContain('--embeddings --pooling mean');
    expect(child.memoryBytes).toBeGreaterThan(0);
    expect(t.gw.scheduler.status().memoryUsedBytes).toBe(before + child.memoryBytes);
    const ps = await ollama.ps();
    expect(ps.models.find((m) => m.name === 'tiny:latest (embeddings)')).toMatchObject({
      size: child.memoryBytes,
      details: { family: 'llama' },
      context_length: 512,
    });
    // The chat model itself was not loaded for it.
    expect(t.gw.scheduler.loaded().some((l) => l.name === 'tiny:latest')).toBe(false);
    const unloaded = new Promise((resolve) =>
      t.gw.scheduler.on('unloaded', (name) => name === 'tiny:latest (embeddings)' && resolve(name)),
    );
    await ollama.embed({ model: 'tiny', input: 'bye', keep_alive: 0 });
    await unloaded;
    expect(t.gw.scheduler.loaded().some((l) => l.name === 'tiny:latest (embeddings)')).toBe(false);
  });
});

describe('LangChain', () => {
  it("OllamaEmbeddings with the user's chat model embeds documents and queries", async () => {
    const embeddings = new OllamaEmbeddings({ model: 'tiny', baseUrl: t.url });
    const docs = await embeddings.embedDocuments(['first document', 'second document']);
    expect(docs).toHaveLength(2);
    expect(docs[0]).toHaveLength(64);
    const query = await embeddings.embedQuery('first document');
    expect(query).toHaveLength(64);
    for (const [i, x] of query.entries()) expect(x).toBeCloseTo(docs[0]![i]!, 5);
  });
});

describe('generate extras', () => {
  it('suffix goes through /infill for FIM models; 400 otherwise', async () => {
    const res = await ollama.generate({
      model: 'fim',
      prompt: 'def f(',
      suffix: 'return x',
      options: { num_predict: 3 },
    });
    expect(res.eval_count).toBe(3);
    await expect(ollama.generate({ model: 'tiny', prompt: 'a', suffix: 'b' })).rejects.toMatchObject({
      status_code: 400,
      error: expect.stringContaining('insert'),
    });
  });

  it('returns context and accepts it back', async () => {
    const first = await ollama.generate({
      model: 'tiny',
      prompt: 'hello',
      options: { num_predict: 3, temperature: 0 },
    });
    expect(first.context.length).toBeGreaterThan(3);
    const tokens = first.context;
    const second = await ollama.generate({
      model: 'tiny',
      prompt: ' again',
      context: tokens,
      options: { num_predict: 2 },
    });
    expect(second.prompt_eval_count).toBeGreaterThan(0);
    expect(second.context.slice(0, tokens.length)).toEqual(tokens);
    expect(second.context.length).toBeGreaterThan(tokens.length + 2);
  });

  it("context decodes to the prompt and the whole answer, also where llama-server's stream leaves ids out", async () => {
    // A scripted model: after "f" (the last token of "caf") it writes é and € one byte a token, around
    // " ok", then " end". llama-server's stream holds back a token that ends inside a UTF-8 character
    // and sends the whole character with the last token's id only: three of the seven ids never come.
    const script = ['f', '<0xC3>', '<0xA9>', '▁ok', '<0xE2>', '<0x82>', '<0xAC>', '▁end'];
    await writeTinyModel(join(t.dir, 'data', 'models', 'bytes.gguf'), { name: 'bytes', seed: 7, script });
    await t.gw.catalog.refresh();
    const options = { num_predict: script.length - 1, temperature: 0 };
    const whole = await ollama.generate({ model: 'bytes', prompt: 'caf', raw: true, options });
    expect(whole.response).toBe('é ok€ end');
    const runner = t.gw.scheduler.loaded().find((l) => l.name === 'bytes:latest')!.runner;
    const direct = (path: string, body: object) => runner.client!.forward({ path, body });
    const llama = async <T>(path: string, body: object): Promise<T> =>
      JSON.parse(await bodyText((await direct(path, body)).body)) as T;
    const { tokens: ids } = await llama<{ tokens: number[] }>('/tokenize', {
      content: 'café ok€ end',
      add_special: true,
    });
    const directText = await bodyText(
      (
        await direct('/completion', {
          prompt: 'caf',
          n_predict: options.num_predict,
          temperature: 0,
          stream: true,
          return_tokens: true,
        })
      ).body,
    );
    const streamedIds = directText
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .flatMap((l) => (JSON.parse(l.slice(6)) as { tokens?: number[] }).tokens ?? []);
    expect(streamedIds.length).toBe(4);

    const streamed = [];
    for await (const part of await ollama.generate({ model: 'bytes', prompt: 'caf', raw: true, stream: true, options }))
      streamed.push(part);
    expect(streamed.map((p) => p.response).join('')).toBe('é ok€ end');
    for (const context of [whole.context, streamed.at(-1)!.context]) {
      expect(context).toEqual(ids);
      const { content } = await llama<{ content: string }>('/detokenize', { tokens: context });
      expect(content).toContain('café ok€ end');
    }
  });

  it('template override: Ollama templates rendered (classic and .Messages forms), others refused clearly', async () => {
    const ok = await ollama.generate({
      model: 'tiny',
      prompt: 'hi',
      system: 'sys',
      template:
        '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n{{ .Response }}',
      options: { num_predict: 2 },
    });
    expect(ok.done).toBe(true);
    const messages = await ollama.generate({
      model: 'tiny',
      prompt: 'hi',
      template:
        '{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n',
      options: { num_predict: 1 },
    });
    expect(messages.done).toBe(true);
    const bad = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'hi',
      template: '{{ template "other" . }}',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/template/);
  });

  it('images without mmproj: 400 naming the problem', async () => {
    await expect(ollama.generate({ model: 'tiny', prompt: 'what', images: ['aGVsbG8='] })).rejects.toMatchObject({
      status_code: 400,
      error: expect.stringContaining('images'),
    });
    await expect(
      ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'x', images: ['aGVsbG8='] }] }),
    ).rejects.toMatchObject({ status_code: 400 });
  });
});

describe('chat with tools and thinking (real llama-server, tool-capable Jinja template)', () => {
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];

  it('tools, assistant tool_calls (arguments object) and role tool are accepted by the template', async () => {
    const res = await ollama.chat({
      model: 'tooly',
      tools,
      messages: [
        { role: 'user', content: 'weather in Paris?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
        },
        { role: 'tool', content: 'sunny', tool_name: 'get_weather' } as never,
      ],
      think: false,
      options: { num_predict: 3 },
    });
    expect(res.done).toBe(true);
    expect(res.eval_count).toBe(3);
    // The template printed the tools and the history: far more prompt than the three messages alone.
    expect(res.prompt_eval_count).toBeGreaterThan(150);
  });

  it('think: reasoning streamed as message.thinking', async () => {
    let thinking = '';
    let content = '';
    for await (const part of await ollama.chat({
      model: 'tooly',
      think: true,
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
      options: { num_predict: 6, temperature: 0, seed: 1 },
    })) {
      thinking += part.message.thinking ?? '';
      content += part.message.content;
    }
    expect(thinking.length + content.length).toBeGreaterThan(0);
    expect(thinking.length).toBeGreaterThan(0);
    const show = await ollama.show({ model: 'tooly' });
    expect(show.capabilities).toEqual(expect.arrayContaining(['tools', 'thinking']));
  });

  it('generate with think goes through the reasoning parser too', async () => {
    const res = await ollama.generate({
      model: 'tooly',
      prompt: 'hi',
      think: true,
      options: { num_predict: 6, temperature: 0, seed: 1 },
    });
    expect(res.done).toBe(true);
    expect((res.thinking ?? '').length + (res.response ?? '').length).toBeGreaterThan(0);
  });

  it('format json constrains the output', async () => {
    const res = await ollama.chat({
      model: 'tiny',
      format: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
      messages: [{ role: 'user', content: 'x' }],
      options: { num_predict: 3, temperature: 0 },
    });
    // Test gateways run with --ignore-eos, so generation is cut before the grammar would need EOS.
    expect(res.message.content.startsWith('{')).toBe(true);
    const gen = await ollama.generate({ model: 'tiny', prompt: 'x', format: 'json', options: { num_predict: 2 } });
    expect(String(gen.response).startsWith('{')).toBe(true);
  });
});

describe('copy, create, delete, push', () => {
  it('copy creates an alias that survives a catalogue rebuild', async () => {
    await ollama.copy({ source: 'tiny', destination: 'tiny-copy:v1' });
    const list = await ollama.list();
    expect(list.models.map((m) => m.name)).toContain('tiny-copy:v1');
    await t.gw.catalog.refresh();
    const gen = await ollama.generate({ model: 'tiny-copy:v1', prompt: 'x', options: { num_predict: 1 } });
    expect(gen.eval_count).toBe(1);
    await expect(ollama.copy({ source: 'nope', destination: 'x' })).rejects.toMatchObject({ status_code: 404 });
  });

  it('create (JSON form) defines a derived model with its own defaults', async () => {
    const parts = [];
    for await (const p of await ollama.create({
      model: 'derived',
      from: 'tiny',
      system: 'You are terse.',
      parameters: { num_predict: 2, temperature: 0 },
      stream: true,
    }))
      parts.push(p.status);
    expect(parts.at(-1)).toBe('success');
    const show = await ollama.show({ model: 'derived' });
    expect(show.system).toBe('You are terse.');
    expect(show.parameters).toMatch(/num_predict\s+2/);
    const gen = await ollama.generate({ model: 'derived', prompt: 'x' });
    expect(gen.eval_count).toBe(2);
  });

  it('create with a Jinja template runs llama-server with it as the chat template', async () => {
    const template =
      '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}';
    await ollama.create({ model: 'jinja', from: 'tiny', template });
    expect((await ollama.show({ model: 'jinja' })).template).toBe(template);
    const res = await ollama.chat({
      model: 'jinja',
      messages: [{ role: 'user', content: 'hello world' }],
      options: { num_predict: 1 },
    });
    expect(res.eval_count).toBe(1);
    const runner = t.gw.scheduler.loaded().find((l) => l.name === 'jinja:latest')!.runner;
    const props = JSON.parse(
      await bodyText((await runner.client!.forward({ method: 'GET', path: '/props' })).body),
    ) as {
      chat_template: string;
    };
    expect(props.chat_template).toBe(template);
  });

  it('create (Modelfile form); a Go template over the GGUF’s own Jinja template is refused', async () => {
    const res = await post(`${t.url}/api/create`, {
      model: 'mf',
      modelfile: 'FROM tiny\nPARAMETER num_predict 3\nPARAMETER stop "<|im_end|>"\nSYSTEM """multi\nline"""\n',
      stream: false,
    });
    expect(res.status).toBe(200);
    const show = await ollama.show({ model: 'mf' });
    expect(show.system).toBe('multi\nline');
    expect((await ollama.generate({ model: 'mf', prompt: 'x' })).eval_count).toBe(3);
    const go = await post(`${t.url}/api/create`, {
      model: 'go',
      from: 'tiny',
      template: '{{ .Prompt }}',
      stream: false,
    });
    expect(go.status).toBe(400);
    const unk = await post(`${t.url}/api/create`, { model: 'z', modelfile: 'FROM tiny\nADAPTER x.gguf' });
    expect(unk.status).toBe(400);
    expect(((await unk.json()) as { error: string }).error).toContain('ADAPTER');
  });

  it('delete: managed alias goes away; configured model is hidden, its file kept; push is 501', async () => {
    await ollama.delete({ model: 'tiny-copy:v1' });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('tiny-copy:v1');
    await ollama.delete({ model: 'fim' });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('fim:latest');
    expect((await stat(fixtures.models.fim)).size).toBeGreaterThan(0);
    await t.gw.catalog.refresh();
    expect(t.gw.catalog.resolve('fim')).toBeUndefined();
    const res = await fetch(`${t.url}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: 'nope' }) });
    expect(res.status).toBe(404);
    await expect(ollama.push({ model: 'tiny' })).rejects.toMatchObject({ status_code: 501 });
    const lines = await ndjson(await post(`${t.url}/api/create`, { model: 'streamed', from: 'tiny' }));
    expect(lines.at(-1)).toEqual({ status: 'success' });
  });
});
