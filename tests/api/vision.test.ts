import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Ollama } from 'ollama';
import { projectorTokens } from '../fixtures/mmproj-writer.js';
import { tinyPng } from '../fixtures/png.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Image input end to end: a real llama-server started with a tiny random-weight projector. Every
 * image is resized to the projector's fixed size, so it costs exactly IMAGE_TOKENS prompt tokens;
 * comparing a request with and without an image proves the image was encoded, not dropped.
 */
const IMAGE_TOKENS = projectorTokens();
const PNG = tinyPng(20, 12).toString('base64');
const NOT_AN_IMAGE = Buffer.from('hello').toString('base64');
const fixtures = inject('fixtures');
const short = { num_predict: 2, temperature: 0 };

let t: TestGateway;
let ollama: Ollama;

interface Final {
  done: boolean;
  prompt_eval_count: number;
  eval_count: number;
  message?: { role: string; content: string };
  response?: string;
  error?: string;
}

async function api(path: string, body: Record<string, unknown>): Promise<{ status: number; json: Final }> {
  const res = await post(`${t.url}${path}`, { stream: false, options: short, ...body });
  return { status: res.status, json: (await res.json()) as Final };
}

const chat = (images?: string[], extra: Record<string, unknown> = {}) =>
  api('/api/chat', {
    model: 'eyes',
    messages: [{ role: 'user', content: 'hello world', ...(images ? { images } : {}) }],
    ...extra,
  });

beforeAll(async () => {
  t = await startGateway({
    models: {
      eyes: { path: fixtures.models.chat, mmproj: fixtures.models.mmproj },
      blind: { path: fixtures.models.chat },
    },
  });
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => t?.close());

describe('vision capability', () => {
  it('/api/show lists vision only for the model with a projector', async () => {
    const eyes = await ollama.show({ model: 'eyes' });
    expect(eyes.capabilities).toContain('vision');
    const blind = await ollama.show({ model: 'blind' });
    expect(blind.capabilities).not.toContain('vision');
  });
});

describe('/api/chat with images', () => {
  it('encodes each image into exactly IMAGE_TOKENS prompt tokens', async () => {
    const plain = await chat();
    const one = await chat([PNG]);
    const two = await chat([PNG, PNG]);
    for (const r of [plain, one, two]) {
      expect(r.status).toBe(200);
      expect(r.json.message?.role).toBe('assistant');
      expect(r.json.eval_count).toBe(2);
    }
    expect(one.json.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
    expect(two.json.prompt_eval_count - plain.json.prompt_eval_count).toBe(2 * IMAGE_TOKENS);
  });

  it('counts the whole prompt even when llama-server reuses its cache for a repeated image', async () => {
    const plain = await chat();
    const first = await chat([PNG]);
    const again = await chat([PNG]);
    expect(first.json.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
    expect(again.json.prompt_eval_count).toBe(first.json.prompt_eval_count);
  });

  it('streams: NDJSON deltas, then a final line with the image tokens counted', async () => {
    const plain = await chat();
    const res = await post(`${t.url}/api/chat`, {
      model: 'eyes',
      messages: [{ role: 'user', content: 'hello world', images: [PNG] }],
      options: short,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = await ndjson(res);
    const last = lines.at(-1) as unknown as Final;
    expect(lines.slice(0, -1).every((l) => l.done === false)).toBe(true);
    expect(last.done).toBe(true);
    expect(last.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
  });

  it('accepts a data: URL as well as bare base64', async () => {
    const bare = await chat([PNG]);
    const url = await chat([`data:image/png;base64,${PNG}`]);
    expect(url.status).toBe(200);
    expect(url.json.prompt_eval_count).toBe(bare.json.prompt_eval_count);
  });

  it('keeps the image when a format forces the template-then-complete path', async () => {
    const plain = await chat(undefined, { format: 'json' });
    const one = await chat([PNG], { format: 'json' });
    expect(one.status).toBe(200);
    expect(one.json.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
  });

  it('the ollama client sends images (bytes or base64) through chat', async () => {
    const plain = await ollama.chat({
      model: 'eyes',
      messages: [{ role: 'user', content: 'hello world' }],
      options: short,
    });
    const bytes = await ollama.chat({
      model: 'eyes',
      messages: [{ role: 'user', content: 'hello world', images: [tinyPng(20, 12)] }],
      options: short,
    });
    expect(bytes.message.role).toBe('assistant');
    expect(bytes.prompt_eval_count - plain.prompt_eval_count).toBe(IMAGE_TOKENS);
    const chunks = [];
    for await (const part of await ollama.chat({
      model: 'eyes',
      messages: [{ role: 'user', content: 'hello world', images: [PNG] }],
      options: short,
      stream: true,
    }))
      chunks.push(part);
    expect(chunks.at(-1)?.done).toBe(true);
    expect(chunks.at(-1)!.prompt_eval_count - plain.prompt_eval_count).toBe(IMAGE_TOKENS);
  });
});

describe('/api/generate with images', () => {
  const generate = (images?: string[], extra: Record<string, unknown> = {}) =>
    api('/api/generate', { model: 'eyes', prompt: 'hello world', ...(images ? { images } : {}), ...extra });

  it('goes through the chat endpoint and counts the image', async () => {
    const plain = await generate();
    const one = await generate([PNG]);
    expect(one.status).toBe(200);
    expect(typeof one.json.response).toBe('string');
    expect(one.json.eval_count).toBe(2);
    // The plain prompt is completed from the same template, so the two differ by the image alone.
    expect(one.json.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
  });

  it('refuses images with a raw prompt rather than dropping them', async () => {
    const res = await generate([PNG], { raw: true });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/"images" cannot be combined with "raw"/);
  });

  it('streams, and works with a format too', async () => {
    const plain = await generate();
    const res = await post(`${t.url}/api/generate`, {
      model: 'eyes',
      prompt: 'hello world',
      images: [PNG],
      options: short,
    });
    expect(res.status).toBe(200);
    const last = (await ndjson(res)).at(-1) as unknown as Final;
    expect(last.done).toBe(true);
    expect(last.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
    const json = await generate([PNG], { format: 'json' });
    expect(json.status).toBe(200);
    expect(json.json.prompt_eval_count - plain.json.prompt_eval_count).toBe(IMAGE_TOKENS);
  });

  it('the ollama client sends images through generate', async () => {
    const plain = await ollama.generate({ model: 'eyes', prompt: 'hello world', options: short });
    const res = await ollama.generate({ model: 'eyes', prompt: 'hello world', images: [PNG], options: short });
    expect(res.done).toBe(true);
    expect(res.prompt_eval_count - plain.prompt_eval_count).toBe(IMAGE_TOKENS);
  });
});

describe('image errors are 400s in Ollama shape', () => {
  it.each([
    ['chat', '/api/chat', { messages: [{ role: 'user', content: 'hi', images: [NOT_AN_IMAGE] }] }],
    ['generate', '/api/generate', { prompt: 'hi', images: [NOT_AN_IMAGE] }],
  ])('%s: data that is not an image, streamed or not', async (_name, path, body) => {
    for (const stream of [false, true]) {
      const res = await post(`${t.url}${path}`, { model: 'eyes', stream, options: short, ...body });
      expect(res.status).toBe(400);
      const json = (await res.json()) as { error: unknown };
      expect(typeof json.error).toBe('string');
      expect(json.error).toMatch(/image/i);
    }
  });

  it('an image for a model without a projector', async () => {
    const res = await post(`${t.url}/api/chat`, {
      model: 'blind',
      messages: [{ role: 'user', content: 'hi', images: [PNG] }],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/does not support images/);
    await expect(ollama.generate({ model: 'blind', prompt: 'hi', images: [PNG] })).rejects.toMatchObject({
      status_code: 400,
    });
  });
});

describe('/v1/chat/completions passthrough', () => {
  const content = (withImage: boolean) => [
    { type: 'text', text: 'hello world' },
    ...(withImage ? [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] : []),
  ];
  const complete = async (model: string, withImage: boolean) =>
    post(`${t.url}/v1/chat/completions`, {
      model,
      messages: [{ role: 'user', content: content(withImage) }],
      max_tokens: 2,
    });

  it('forwards image_url parts to the vision model', async () => {
    const plain = await complete('eyes', false);
    const res = await complete('eyes', true);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { role: string } }[]; usage: { prompt_tokens: number } };
    expect(body.choices[0]!.message.role).toBe('assistant');
    const base = ((await plain.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    expect(body.usage.prompt_tokens - base).toBe(IMAGE_TOKENS);
  });

  it('refuses images for a model without a projector with an OpenAI-shaped 400', async () => {
    const res = await complete('blind', true);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/does not support images/);
  });

  it('an undecodable image is an OpenAI-shaped 400', async () => {
    const res = await post(`${t.url}/v1/chat/completions`, {
      model: 'eyes',
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${NOT_AN_IMAGE}` } }] },
      ],
      max_tokens: 2,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/image/i);
  });

  it('remote image URLs are refused unless the operator allows them; then llama-server fetches them', async () => {
    let fetched = 0;
    const host = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'image/png' }).end(tinyPng(20, 12));
    });
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(host.address() as { port: number }).port}/cat.png`;
    const ask = (base: string) =>
      post(`${base}/v1/chat/completions`, {
        model: 'eyes',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hello world' },
              { type: 'image_url', image_url: { url } },
            ],
          },
        ],
        max_tokens: 2,
      });
    const open = await startGateway({
      server: { remote_media: true },
      models: { eyes: { path: fixtures.models.chat, mmproj: fixtures.models.mmproj } },
    });
    try {
      const refused = await ask(t.url);
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(
        /remote media URLs are not fetched/,
      );
      expect(fetched).toBe(0);
      const allowed = await ask(open.url);
      expect(allowed.status).toBe(200);
      expect(fetched).toBe(1);
      const plain = await complete('eyes', false);
      const base = ((await plain.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
      expect(((await allowed.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens - base).toBe(
        IMAGE_TOKENS,
      );
    } finally {
      await open.close();
      host.close();
    }
  });
});
