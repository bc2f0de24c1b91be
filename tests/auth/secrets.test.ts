import { readFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPasswords, DEFAULT_BCRYPT_COST } from '../../src/auth/passwords.js';
import { createAccounts } from '../../src/auth/accounts.js';
import { createApiToken } from '../../src/auth/tokens.js';
import { buildTestApp, login, passwords, tempStore } from './helpers.js';

describe('secrets at rest and under load', () => {
  it('uses bcrypt cost 12 by default', async () => {
    const production = createPasswords();
    expect(production.cost).toBe(DEFAULT_BCRYPT_COST);
    const hash = await production.hash('production-password');
    expect(hash).toMatch(/^\$2b\$12\$/);
    expect(await production.verify('production-password', hash)).toBe(true);
    expect(await production.verify('wrong-password', hash)).toBe(false);
  });

  it('stores no token, password or session id in clear', async () => {
    const env = tempStore();
    const app = await buildTestApp(env.store);
    const password = 'plaintext-password-4711';
    await createAccounts({ store: env.store, passwords }).addUser('alice', password, 'admin');
    const token = await createApiToken(env.store, { name: 'ci', role: 'viewer' });
    await app.inject({ url: '/api/tags', headers: { authorization: `Bearer ${token.secret}` } });
    const session = await login(app, 'alice', password);
    const sessionJwt = session.cookie.split('=')[1]!;
    const { sessionId } = await app.corralAuth.sessions.create(1);
    await env.store.flush();
    const files = [env.path, `${env.path}-wal`].filter(existsSync);
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    expect(bytes.length).toBeGreaterThan(0);
    for (const secret of [password, token.secret, token.secret.slice(7), sessionJwt, sessionId]) {
      expect(bytes.includes(Buffer.from(secret)), secret).toBe(false);
    }
    // The hash is what is there.
    expect(bytes.includes(Buffer.from((await env.store.apiTokens.findById(token.id))!.token_hash))).toBe(true);
    await app.close();
    await env.cleanup();
  });

  it('handles parallel requests writing logs concurrently', async () => {
    const env = tempStore();
    const app = await buildTestApp(env.store, {
      config: { mode: 'required' },
      routes: (app) =>
        app.post('/api/generate', async (request) => {
          const p = request.principal!;
          env.store.requestLog.write({ principal: p.name, tokenId: p.tokenId, endpoint: '/api/generate', status: 200 });
          return { ok: true };
        }),
    });
    const tokens = await Promise.all(
      Array.from(
        { length: 5 },
        async (_, i) => (await createApiToken(env.store, { name: `t${i}`, role: 'operator' })).secret,
      ),
    );
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        app.inject({
          method: 'POST',
          url: i % 2 ? '/api/generate' : '/api/pull',
          headers: { authorization: `Bearer ${tokens[i % 5]}` },
          payload: {},
        }),
      ),
    );
    expect(responses.every((r) => r.statusCode === 200)).toBe(true);
    await env.store.flush();
    expect(await env.store.requestLog.recent({ limit: 500 })).toHaveLength(50);
    expect(await env.store.auditLog.recent({ action: 'model.pull', limit: 500 })).toHaveLength(50);
    expect((await env.store.apiTokens.list()).every((t) => t.last_used_at !== null)).toBe(true);
    await app.close();
    await env.cleanup();
  });
});
