import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { loginAs, type Session } from '../admin/helpers.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const fixtures = inject('fixtures');

describe('the conversations API behind the playground', () => {
  let t: TestGateway;
  let s: Session;
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers = {}) =>
    t.gw.app.inject({
      method,
      url,
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, ...headers },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });

  beforeAll(async () => {
    t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    s = await loginAs(t, 'viewer', 'val');
  });
  afterAll(() => t?.close());

  it('creates, lists newest first, renames, replaces messages and deletes', async () => {
    const a = (await call('POST', '/admin/conversations', { model: 'tiny:latest', title: 'First' })).json();
    const b = await call('POST', '/admin/conversations', {
      model: 'tiny:latest',
      system: 'Be brief.',
      options: { temperature: 0.2 },
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(b.statusCode).toBe(201);
    expect(b.json()).toMatchObject({
      title: 'New conversation',
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const renamed = await call('PATCH', `/admin/conversations/${a.id}`, {
      title: 'Renamed',
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
    });
    expect(renamed.json()).toMatchObject({
      title: 'Renamed',
      model: 'tiny:latest',
      messages: [{ content: 'q' }, { content: 'a' }],
    });
    const list = (await call('GET', '/admin/conversations')).json() as {
      conversations: { id: string; title: string }[];
    };
    expect(list.conversations.map((c) => c.title)).toEqual(['Renamed', 'New conversation']);
    expect((await call('DELETE', `/admin/conversations/${a.id}`)).statusCode).toBe(204);
    expect((await call('DELETE', `/admin/conversations/${a.id}`)).statusCode).toBe(404);
  });

  it('refuses malformed bodies and ids with 400, and a missing CSRF token with 403', async () => {
    const bad = [
      { model: 'tiny', messages: [{ role: 'tool', content: 'x' }] },
      { model: 'tiny', messages: [{ role: 'user', content: 1 }] },
      { model: 'tiny', colour: 'blue' },
      { title: 'no model' },
    ];
    for (const body of bad) expect((await call('POST', '/admin/conversations', body)).statusCode).toBe(400);
    expect((await call('GET', '/admin/conversations/..%2F..%2Fetc')).statusCode).toBe(400);
    const noCsrf = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/conversations',
      headers: { cookie: s.cookie },
      payload: { model: 'tiny' },
    });
    expect(noCsrf.statusCode).toBe(403);
  });

  it('takes images up to the API body limit, not the 16 KB of admin forms', async () => {
    const image = Buffer.alloc(300_000, 7).toString('base64');
    const res = await call('POST', '/admin/conversations', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'see', images: [image] }],
    });
    expect(res.statusCode).toBe(201);
    const got = (await call('GET', `/admin/conversations/${res.json().id}`)).json();
    expect(got.messages[0].images).toEqual([image]);
  });

  it('needs a login: the admin UI takes no API tokens and no anonymous loopback callers', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'bot', role: 'viewer' });
    const asToken = await t.gw.app.inject({
      url: '/admin/conversations',
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(asToken.statusCode).toBe(401);
    expect((await t.gw.app.inject({ url: '/admin/conversations' })).statusCode).toBe(401);
  });
});
