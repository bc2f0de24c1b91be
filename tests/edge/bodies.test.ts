import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { upload } from './helpers.js';

const MB = 1024 * 1024;
let t: TestGateway;
let token: string;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({ auth: { mode: 'required' }, models: { tiny: { path: fixtures.models.chat } } });
  token = (await createApiToken(t.gw.store, { name: 'api', role: 'viewer' })).secret;
});
afterAll(async () => t?.close());

const version = async () => (await fetch(`${t.url}/api/version`)).status;

describe('bodies in required mode', () => {
  it('answers a 50 MB login body at once and does not read it', async () => {
    for (const chunked of [false, true]) {
      const [res, during] = await Promise.all([upload(t.url, '/admin/login', 50 * MB, { chunked }), version()]);
      console.log(
        `50 MB to /admin/login (${chunked ? 'chunked' : 'content-length'}): ${res.status} after ${res.ms.toFixed(1)} ms`,
      );
      expect(res.status).toBe(413);
      expect(res.completed).toBe(false);
      expect(res.sentAtResponse).toBeLessThan(50 * MB);
      expect(during).toBe(200);
    }
    expect(await version()).toBe(200);
  });

  it('answers a 50 MB API body without a token before reading it', async () => {
    for (const url of ['/api/chat', '/v1/chat/completions']) {
      const [res, during] = await Promise.all([upload(t.url, url, 50 * MB), version()]);
      console.log(`50 MB to ${url} without a token: ${res.status} after ${res.ms.toFixed(1)} ms`);
      expect(res.status).toBe(401);
      expect(res.completed).toBe(false);
      expect(during).toBe(200);
    }
  });

  it('refuses JSON nested deeper than server.json_max_depth with 400, and stays responsive', async () => {
    const headers = { authorization: `Bearer ${token}` };
    const deep = await upload(t.url, '/api/chat', 8 * MB, { headers });
    console.log(`8 MB of "[" to /api/chat with a token: ${deep.status} after ${deep.ms.toFixed(1)} ms`);
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.body).error).toMatch(/nested deeper than 64/);
    const nested = JSON.stringify({
      model: 'tiny',
      messages: [],
      options: JSON.parse(`${'{"a":'.repeat(70)}1${'}'.repeat(70)}`),
    });
    const res = await fetch(`${t.url}/api/chat`, { method: 'POST', headers, body: nested });
    expect(res.status).toBe(400);
    expect(await version()).toBe(200);
  });

  it('takes an API body up to server.body_limit (images) with a token', async () => {
    const image = 'A'.repeat(20 * MB);
    const body = JSON.stringify({
      model: 'tiny',
      prompt: 'x',
      images: [image],
      stream: false,
      options: { num_predict: 1 },
    });
    const res = await fetch(`${t.url}/api/show`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'tiny', padding: body.slice(0, 20 * MB) }),
    });
    expect(res.status).toBe(200);
  });
});
