import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({
    models: {
      tiny: { path: fixtures.models.chat, aliases: ['tiny-alias'] },
      broken: { path: fixtures.models.broken },
    },
  });
});
afterAll(async () => t?.close());

describe('root and version', () => {
  it('GET / and HEAD / answer like Ollama', async () => {
    const res = await fetch(`${t.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Ollama is running');
    const head = await fetch(`${t.url}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });
  it('GET /api/version reports the configured Ollama version', async () => {
    const body = (await (await fetch(`${t.url}/api/version`)).json()) as { version: string };
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('catalogue', () => {
  it('/api/tags lists configured models with GGUF details', async () => {
    const body = (await (await fetch(`${t.url}/api/tags`)).json()) as { models: Record<string, any>[] };
    const tiny = body.models.find((m) => m.name === 'tiny:latest');
    expect(tiny).toBeDefined();
    expect(tiny!.model).toBe('tiny:latest');
    expect(tiny!.size).toBeGreaterThan(1000);
    expect(tiny!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(tiny!.modified_at).getTime()).toBeGreaterThan(0);
    expect(tiny!.details).toMatchObject({ format: 'gguf', family: 'llama', families: ['llama'] });
    expect(tiny!.details.parameter_size).toMatch(/^[\d.]+[KMB]$/);
    expect(tiny!.details.quantization_level).toBe('F32');
  });

  it('/api/show returns model_info, template and capabilities without starting llama-server', async () => {
    const res = await post(`${t.url}/api/show`, { model: 'TINY' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body.model_info['general.architecture']).toBe('llama');
    expect(body.model_info['llama.context_length']).toBeGreaterThan(0);
    expect(body.template).toContain('im_start');
    expect(body.capabilities).toContain('completion');
    expect(body.details.family).toBe('llama');
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('/api/show accepts the legacy "name" field and aliases', async () => {
    const res = await post(`${t.url}/api/show`, { name: 'tiny-alias:latest' });
    expect(res.status).toBe(200);
  });
});

describe('generate', () => {
  it('streams NDJSON, one object per token, ending with nanosecond statistics', async () => {
    const res = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'hello',
      options: { num_predict: 8, temperature: 0, seed: 1 },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = await ndjson(res);
    const last = lines.at(-1)!;
    expect(
      lines.slice(0, -1).every((l) => l.done === false && typeof l.response === 'string' && l.model === 'tiny:latest'),
    ).toBe(true);
    expect(last.done).toBe(true);
    expect(last.done_reason).toBe('length');
    expect(last.eval_count).toBe(8);
    for (const k of [
      'total_duration',
      'load_duration',
      'prompt_eval_count',
      'prompt_eval_duration',
      'eval_count',
      'eval_duration',
    ]) {
      expect(Number.isInteger(last[k]), k).toBe(true);
    }
    expect(last.eval_duration as number).toBeGreaterThan(0);
    expect(last.total_duration as number).toBeGreaterThanOrEqual(last.eval_duration as number);
    expect(new Date(last.created_at as string).toISOString()).toBe(last.created_at);
  });

  it('stream:false answers one JSON object; seed + temperature 0 is deterministic; num_predict is honoured', async () => {
    const ask = async (n: number) => {
      const res = await post(`${t.url}/api/generate`, {
        model: 'tiny',
        prompt: 'once upon',
        stream: false,
        options: { num_predict: n, temperature: 0, seed: 42 },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/json');
      return (await res.json()) as Record<string, any>;
    };
    const a = await ask(12);
    const b = await ask(12);
    const c = await ask(5);
    expect(a.done).toBe(true);
    expect(a.eval_count).toBe(12);
    expect(c.eval_count).toBe(5);
    expect(a.response).toBe(b.response);
    expect(a.response.length).toBeGreaterThan(0);
  });

  it('raw prompts go to the model untemplated and report prompt_eval_count', async () => {
    const res = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'the the the',
      raw: true,
      stream: false,
      options: { num_predict: 3, temperature: 0 },
    });
    const body = (await res.json()) as Record<string, any>;
    expect(body.eval_count).toBe(3);
    // The templated prompt would add the ChatML markup tokens; raw is just BOS + the text.
    const templated = (await (
      await post(`${t.url}/api/generate`, {
        model: 'tiny',
        prompt: 'the the the',
        stream: false,
        options: { num_predict: 3, temperature: 0 },
      })
    ).json()) as Record<string, any>;
    expect(templated.prompt_eval_count).toBeGreaterThan(body.prompt_eval_count);
  });

  it('honours stop sequences', async () => {
    const base = (await (
      await post(`${t.url}/api/generate`, {
        model: 'tiny',
        prompt: 'stop test',
        stream: false,
        options: { num_predict: 24, temperature: 0, seed: 3 },
      })
    ).json()) as Record<string, any>;
    const text: string = base.response;
    // Pick a stop string that first occurs a few characters in, so the answer must be cut before it.
    const chars = [...text];
    const i = chars.findIndex(
      (ch, idx) => idx >= 1 && chars.indexOf(ch) === idx && ch.trim() !== '' && ch !== '\uFFFD',
    );
    expect(i).toBeGreaterThan(0);
    const stop = chars[i]!;
    const cut = (await (
      await post(`${t.url}/api/generate`, {
        model: 'tiny',
        prompt: 'stop test',
        stream: false,
        options: { num_predict: 24, temperature: 0, seed: 3, stop: [stop] },
      })
    ).json()) as Record<string, any>;
    expect(cut.done_reason).toBe('stop');
    expect(cut.response).not.toContain(stop);
    expect(text.startsWith(cut.response)).toBe(true);
    expect(cut.eval_count).toBeLessThan(24);
  });

  it('an empty prompt loads the model (done_reason "load"), keep_alive 0 unloads it', async () => {
    const load = (await (await post(`${t.url}/api/generate`, { model: 'tiny' })).json()) as Record<string, any>;
    expect(load).toMatchObject({ model: 'tiny:latest', done: true, done_reason: 'load', response: '' });
    const ps = (await (await fetch(`${t.url}/api/ps`)).json()) as { models: Record<string, any>[] };
    const entry = ps.models.find((m) => m.name === 'tiny:latest');
    expect(entry).toBeDefined();
    const expires = new Date(entry!.expires_at).getTime();
    // Default keep_alive is 5 minutes.
    expect(expires - Date.now()).toBeGreaterThan(4 * 60_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(5 * 60_000 + 1000);
    expect(entry!.context_length).toBe(512);
    const unload = (await (await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: 0 })).json()) as Record<
      string,
      any
    >;
    expect(unload.done_reason).toBe('unload');
    const after = (await (await fetch(`${t.url}/api/ps`)).json()) as { models: unknown[] };
    expect(after.models).toHaveLength(0);
  });

  it('a short keep_alive unloads the model when it expires', async () => {
    const unloaded = once(t.gw.scheduler, 'unloaded');
    await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'x',
      stream: false,
      keep_alive: '300ms',
      options: { num_predict: 1 },
    });
    const [name, reason] = await unloaded;
    expect(name).toBe('tiny:latest');
    expect(reason).toBe('keep_alive expired');
  });
});

describe('chat', () => {
  it('streams message chunks and a final done object', async () => {
    const res = await post(`${t.url}/api/chat`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      options: { num_predict: 6, temperature: 0 },
    });
    expect(res.status).toBe(200);
    const lines = await ndjson(res);
    const last = lines.at(-1)!;
    expect(lines.slice(0, -1).every((l) => (l.message as any).role === 'assistant' && l.done === false)).toBe(true);
    expect(last).toMatchObject({
      done: true,
      done_reason: 'length',
      eval_count: 6,
      message: { role: 'assistant', content: '' },
    });
  });

  it('stream:false returns the whole message; the system prompt changes the prompt size', async () => {
    const ask = async (messages: unknown[]) =>
      (await (
        await post(`${t.url}/api/chat`, {
          model: 'tiny',
          stream: false,
          messages,
          options: { num_predict: 4, temperature: 0, seed: 9 },
        })
      ).json()) as Record<string, any>;
    const plain = await ask([{ role: 'user', content: 'hi' }]);
    const withSystem = await ask([
      { role: 'system', content: 'you are a very helpful assistant' },
      { role: 'user', content: 'hi' },
    ]);
    expect(plain.message.role).toBe('assistant');
    expect(plain.message.content.length).toBeGreaterThan(0);
    expect(plain.eval_count).toBe(4);
    expect(withSystem.prompt_eval_count).toBeGreaterThan(plain.prompt_eval_count);
  });

  it('empty messages load the model', async () => {
    const body = (await (await post(`${t.url}/api/chat`, { model: 'tiny', messages: [] })).json()) as Record<
      string,
      any
    >;
    expect(body).toMatchObject({ done: true, done_reason: 'load' });
  });
});

describe('bad input', () => {
  it('unknown model → 404 in Ollama shape', async () => {
    const res = await post(`${t.url}/api/generate`, { model: 'nope', prompt: 'x' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'model "nope" not found, try pulling it first' });
    const show = await post(`${t.url}/api/show`, { model: 'nope' });
    expect(show.status).toBe(404);
  });

  it.each([
    ['invalid JSON', '{"model": "tiny", ', /invalid JSON/],
    ['missing model', { prompt: 'x' }, /"model"/],
    ['model of the wrong type', { model: 3, prompt: 'x' }, /"model"/],
    ['stream of the wrong type', { model: 'tiny', prompt: 'x', stream: 'yes' }, /"stream"/],
    ['prompt of the wrong type', { model: 'tiny', prompt: ['x'] }, /"prompt"/],
    ['an option of the wrong type', { model: 'tiny', prompt: 'x', options: { temperature: 'hot' } }, /temperature/],
    ['invalid keep_alive', { model: 'tiny', prompt: 'x', keep_alive: '5 parsecs' }, /keep_alive/],
    ['invalid format', { model: 'tiny', prompt: 'x', format: 'yaml' }, /format/],
  ])('%s → 400 naming the problem', async (_name, body, pattern) => {
    const res = await post(`${t.url}/api/generate`, body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: string };
    expect(json.error).toMatch(pattern);
  });

  it('a chat message with an invalid role → 400', async () => {
    const res = await post(`${t.url}/api/chat`, { model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/role/);
  });

  it('unknown fields are ignored', async () => {
    const res = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'x',
      stream: false,
      frobnicate: true,
      options: { num_predict: 1, warp_factor: 9 },
    });
    expect(res.status).toBe(200);
  });

  it('curl-style bodies (form content type) are read as JSON, as Ollama does', async () => {
    const res = await fetch(`${t.url}/api/show`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ model: 'tiny' }),
    });
    expect(res.status).toBe(200);
  });

  it("a GGUF that fails to load answers quickly with llama-server's own error line", async () => {
    const started = Date.now();
    const res = await post(`${t.url}/api/generate`, { model: 'broken', prompt: 'x' });
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: string };
    expect(body.error).toMatch(/failed to load/i);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(t.gw.scheduler.loaded().find((l) => l.name === 'broken:latest')).toBeUndefined();
  });
});
