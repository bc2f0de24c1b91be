import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * What a request cannot do to the gateway: reach an object's prototype, carry text llama-server's
 * parser refuses, hold a child with a prompt that cannot fit, or keep a generation running after its
 * client left; and what an operator's scheduling through the API leaves in the audit log.
 */
const fixtures = inject('fixtures');
let t: TestGateway;
beforeAll(async () => {
  t = await startGateway({
    models: {
      tiny: { path: fixtures.models.chat },
      fresh: { path: fixtures.models.chat },
      long: { path: fixtures.models.chat, ctx_size: 65536 },
    },
  });
});
afterAll(async () => t?.close());

const errorText = async (res: Response): Promise<string> => {
  const body = (await res.json()) as { error: string | { message: string } };
  return typeof body.error === 'string' ? body.error : body.error.message;
};
const loaded = (name: string) => t.gw.scheduler.loaded().some((l) => l.name === name);

describe('bodies', () => {
  it('refuses __proto__ and constructor.prototype on every API path, and no prototype changes', async () => {
    for (const path of ['/api/chat', '/v1/chat/completions', '/tokenize']) {
      for (const body of [
        '{"model":"tiny","messages":[],"__proto__":{"polluted":true}}',
        '{"model":"tiny","options":{"constructor":{"prototype":{"polluted":true}}}}',
      ]) {
        const res = await post(`${t.url}${path}`, body);
        expect([path, res.status]).toEqual([path, 400]);
        expect(await errorText(res)).toMatch(/forbidden prototype property/);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('takes lone surrogates, in values and keys, as U+FFFD (llama-server refuses them with a 500)', async () => {
    const body = '{"model":"tiny","stream":false,"messages":[{"role":"user","content":"a\\ud800b","x\\udc00":1}]}';
    const res = await post(`${t.url}/api/chat`, `${body.slice(0, -1)},"options":{"num_predict":1}}`);
    expect(res.status).toBe(200);
    const { tokens } = (await (await post(`${t.url}/tokenize`, '{"model":"tiny","content":"\\udfff"}')).json()) as {
      tokens: number[];
    };
    const replacement = (await (await post(`${t.url}/tokenize`, { model: 'tiny', content: '\ufffd' })).json()) as {
      tokens: number[];
    };
    expect(tokens).toEqual(replacement.tokens);
  });
});

describe('what the first fuzzing answered with 500', () => {
  it('tools: [{}] is a 400 with what llama-server found wrong; encoding_format: null is the default', async () => {
    const messages = [{ role: 'user', content: 'x' }];
    for (const path of ['/v1/chat/completions', '/api/chat']) {
      const res = await post(`${t.url}${path}`, { model: 'tiny', messages, tools: [{}], stream: false });
      expect([path, res.status]).toEqual([path, 400]);
      expect(await errorText(res)).toMatch(/Failed to parse tools: Missing tool type/);
    }
    const embedded = await post(`${t.url}/v1/embeddings`, { model: 'tiny', input: 'x', encoding_format: null });
    expect(embedded.status).toBe(200);
    const nested = await post(`${t.url}/api/chat`, `{"model":"tiny","messages":${'['.repeat(100_000)}`);
    expect(nested.status).toBe(400);
  });
});

describe('prompts longer than the context', () => {
  it('are refused with 400 before a child is started for them', async () => {
    const prompt = 'hello world '.repeat(100_000);
    const requests: [string, unknown][] = [
      ['/api/generate', { model: 'fresh', prompt, stream: false }],
      ['/api/chat', { model: 'fresh', messages: [{ role: 'user', content: prompt }] }],
      ['/v1/chat/completions', { model: 'fresh', messages: [{ role: 'user', content: prompt }] }],
      ['/v1/messages', { model: 'fresh', max_tokens: 1, messages: [{ role: 'user', content: prompt }] }],
    ];
    for (const [path, body] of requests) {
      const res = await post(`${t.url}${path}`, body);
      expect([path, res.status]).toEqual([path, 400]);
      expect(await errorText(res)).toMatch(
        /the prompt is too long: 12000\d\d bytes of text cannot fit the 512-token context/,
      );
    }
    expect(loaded('fresh:latest')).toBe(false);
  });

  it('an over-long embed input is cut before it is tokenized, or refused with truncate: false', async () => {
    const input = 'hello world '.repeat(300_000);
    const cut = await post(`${t.url}/api/embed`, { model: 'tiny', input: [input, 'short'] });
    expect(cut.status).toBe(200);
    expect(((await cut.json()) as { embeddings: number[][] }).embeddings).toHaveLength(2);
    const refused = await post(`${t.url}/api/embed`, { model: 'tiny', input, truncate: false });
    expect(refused.status).toBe(400);
    expect(await errorText(refused)).toMatch(/input length \(3600000 bytes\) exceeds the context length/);
  });
});

/** The child's slots: whether each is generating, and how many tokens it has decoded. */
async function slots(name: string): Promise<{ busy: boolean; decoded: number }[]> {
  const client = t.gw.scheduler.loaded().find((l) => l.name === name)!.runner.client!;
  let text = '';
  for await (const chunk of (await client.forward({ method: 'GET', path: '/slots' })).body) text += chunk;
  return (JSON.parse(text) as { is_processing: boolean; next_token?: { n_decoded: number }[] }[]).map((s) => ({
    busy: s.is_processing,
    decoded: s.next_token?.[0]?.n_decoded ?? 0,
  }));
}

/**
 * How long the child took to stop. llama-server checks a non-streamed request's connection only after
 * a second in which no result (a /slots answer included) arrived, so the polls are 1.5 s apart.
 */
async function waitIdle(name: string, withinMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    if (!(await slots(name)).some((s) => s.busy)) return Date.now() - started;
    if (Date.now() - started > withinMs)
      throw new Error(`${name} still generating ${withinMs} ms after its client left`);
  }
}

describe('a client that leaves', () => {
  // 60,000 tokens take the tiny model 15 s or more: stopping within 6 s shows the generation was cut.
  const long = { messages: [{ role: 'user', content: 'hi' }] };
  const requests: [string, object][] = [
    ['/api/chat', { model: 'long', ...long, stream: false, options: { num_predict: 60_000 } }],
    ['/api/generate', { model: 'long', prompt: 'hi', options: { num_predict: 60_000 } }],
    ['/v1/chat/completions', { model: 'long', ...long, max_tokens: 60_000 }],
    ['/v1/chat/completions', { model: 'long', ...long, max_tokens: 60_000, stream: true }],
  ];

  for (const [path, body] of requests) {
    it(`stops its generation upstream: ${path}${'stream' in body ? ` stream ${body.stream}` : ''}`, async () => {
      await post(`${t.url}/api/generate`, { model: 'long' });
      const ac = new AbortController();
      const res = post(`${t.url}${path}`, body, { signal: ac.signal }).catch(() => undefined);
      // Generating: the slot reports tokens decoded.
      while (((await slots('long:latest'))[0]?.decoded ?? 0) < 100);
      ac.abort();
      await res;
      expect(await waitIdle('long:latest', 6000)).toBeLessThan(6000);
    });
  }
});

describe("an operator's keep_alive through the API", () => {
  it('unloading (0) and pinning (negative) are audited; a viewer is refused', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'ops', role: 'operator' });
    const headers = { authorization: `Bearer ${secret}` };
    expect((await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: -1 }, { headers })).status).toBe(200);
    expect((await post(`${t.url}/api/chat`, { model: 'tiny', keep_alive: 0 }, { headers })).status).toBe(200);
    // The audit row is written after the response, so it is waited for.
    const audit = (action: string) => t.gw.store.auditLog.recent({ action, limit: 5 });
    const entry = { actor: 'ops', target: 'tiny', outcome: 'success' };
    await vi.waitFor(async () => expect((await audit('model.pin'))[0]).toMatchObject(entry));
    await vi.waitFor(async () => expect((await audit('model.unload'))[0]).toMatchObject(entry));
    const viewer = (await createApiToken(t.gw.store, { name: 'view', role: 'viewer' })).secret;
    const refused = await post(
      `${t.url}/api/generate`,
      { model: 'tiny', keep_alive: 0 },
      { headers: { authorization: `Bearer ${viewer}` } },
    );
    expect(refused.status).toBe(403);
    // An ordinary keep_alive is inference, not an action: of it and the unload after it, only the unload
    // is audited (rows are written in order, so once the second unload is there the first request's would be).
    await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: '5m' }, { headers });
    await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: 0 }, { headers });
    await vi.waitFor(async () => expect(await audit('model.unload')).toHaveLength(2));
    expect((await t.gw.store.auditLog.recent({ limit: 1 }))[0]).toMatchObject({ action: 'model.unload' });
  });
});
