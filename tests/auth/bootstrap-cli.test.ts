import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureAdmin, startupAuthCheck } from '../../src/auth/bootstrap.js';
import { createAccounts, unlockedAt } from '../../src/auth/accounts.js';
import { tokenCommand, userCommand, type CliIo } from '../../src/auth/cli.js';
import { createLoginThrottle } from '../../src/auth/throttle.js';
import { checkApiToken } from '../../src/auth/tokens.js';
import { openDatabase } from '../../src/store/database.js';
import { authConfig, buildTestApp, clock, passwords, tempStore } from './helpers.js';

const silent = { info() {}, warn() {} };

describe('bootstrap', () => {
  let env: ReturnType<typeof tempStore>;
  beforeEach(() => (env = tempStore()));
  afterEach(() => env.cleanup());

  it('creates the admin from CORRAL_ADMIN_PASSWORD once', async () => {
    const result = await ensureAdmin(env.store, { CORRAL_ADMIN_PASSWORD: 'first-admin-pw' }, silent, { passwords });
    expect(result).toEqual({ status: 'created', username: 'admin' });
    expect((await env.store.users.findByUsername('admin'))?.role).toBe('admin');
    expect(await ensureAdmin(env.store, { CORRAL_ADMIN_PASSWORD: 'other' }, silent, { passwords })).toEqual({
      status: 'exists',
    });
  });

  it('otherwise hands out a one-time, short-lived setup URL', async () => {
    const t = clock();
    const warnings: string[] = [];
    const first = await ensureAdmin(env.store, {}, { info() {}, warn: (m) => warnings.push(m) }, { now: t.now });
    const second = await ensureAdmin(env.store, {}, silent, { now: t.now });
    if (first.status !== 'setup' || second.status !== 'setup') throw new Error('expected setup');
    expect(warnings[0]).toContain(first.url);
    const app = await buildTestApp(env.store, { now: t.now, config: { mode: 'required' } });
    const setup = (url: string, password = 'setup-password') =>
      app.inject({
        method: 'POST',
        url: '/admin/setup',
        headers: { accept: 'application/json' },
        payload: { token: new URL(url, 'http://x').searchParams.get('token')!, username: 'boss', password },
      });
    expect((await setup(first.url)).statusCode).toBe(403); // superseded by the second URL
    expect((await setup(second.url, 'short')).statusCode).toBe(400); // and that did not burn it
    const ok = await setup(second.url);
    expect(ok.statusCode).toBe(200);
    expect(String(ok.headers['set-cookie'])).toContain('corral_session=');
    expect((await env.store.users.findByUsername('boss'))?.role).toBe('admin');
    expect((await setup(second.url)).statusCode).toBe(403); // one time only
    await app.close();
  });

  it('expires the setup URL', async () => {
    const t = clock();
    const result = await ensureAdmin(env.store, {}, silent, { now: t.now, setupTtlMs: 60_000 });
    if (result.status !== 'setup') throw new Error('expected setup');
    t.advance(60_000);
    const app = await buildTestApp(env.store, { now: t.now });
    const token = result.url.split('token=')[1]!;
    const res = await app.inject({
      method: 'POST',
      url: '/admin/setup',
      payload: { token, password: 'setup-password' },
    });
    expect(res.statusCode).toBe(403);
    await app.close();
  });

  it('refuses mode off beyond loopback unless forced, and warns about wide binds', () => {
    expect(startupAuthCheck(authConfig({ mode: 'off' }), '127.0.0.1')).toEqual([]);
    expect(startupAuthCheck(authConfig({ mode: 'off' }), 'localhost')).toEqual([]);
    expect(() => startupAuthCheck(authConfig({ mode: 'off' }), '0.0.0.0')).toThrow(/refusing to start/);
    expect(() => startupAuthCheck(authConfig({ mode: 'off' }), '::')).toThrow(/refusing/);
    expect(startupAuthCheck(authConfig({ mode: 'off', force_insecure: true }), '0.0.0.0').join('\n')).toMatch(
      /full admin/,
    );
    expect(startupAuthCheck(authConfig(), '192.168.1.5')[0]).toMatch(/beyond loopback/);
  });

  it('warns when loopback-open meets trusted proxies', () => {
    const proxied = authConfig({ trusted_proxies: ['127.0.0.1'] });
    expect(startupAuthCheck(proxied, '127.0.0.1').join('\n')).toMatch(/never loopback/);
    expect(startupAuthCheck({ ...proxied, mode: 'required' }, '127.0.0.1')).toEqual([]);
    expect(startupAuthCheck(authConfig(), '127.0.0.1')).toEqual([]);
  });
});

describe('CLI', () => {
  let env: ReturnType<typeof tempStore>;
  let out: string[];
  let io: CliIo;
  beforeEach(async () => {
    env = tempStore();
    await env.store.close(); // the CLI opens the file itself
    out = [];
    io = {
      out: (l) => out.push(l),
      err: (l) => out.push(`ERR ${l}`),
      readPassword: async () => 'from-stdin-pw',
      passwords,
    };
  });
  afterEach(() => env.cleanup());

  it('manages users', async () => {
    expect(await userCommand(['add', 'alice', '--role', 'operator', '--db', env.path], io)).toBe(0);
    expect(await userCommand(['add', 'bob', '--password', 'bob-password', '--db', env.path], io)).toBe(0);
    expect(await userCommand(['passwd', 'alice', '--db', env.path], io)).toBe(0);
    out.length = 0;
    expect(await userCommand(['list', '--db', env.path], io)).toBe(0);
    expect(out.map((l) => l.split('\t').slice(0, 2).join(' '))).toEqual(['alice operator', 'bob viewer']);
    expect(await userCommand(['frobnicate', '--db', env.path], io)).toBe(2);
    await expect(userCommand(['add', 'alice', '--db', env.path], io)).rejects.toThrow(/exists/);
  });

  it('unlocks a throttled user for a running server that shares the database', async () => {
    const store = openDatabase(env.path);
    await createAccounts({ store, passwords }).addUser('alice', 'alice-password', 'admin');
    const throttle = createLoginThrottle({ freePerUser: 1, unlockedAt: (u) => unlockedAt(store, u) });
    const app = await buildTestApp(store, { throttle });
    const attempt = (password: string) =>
      app.inject({
        method: 'POST',
        url: '/admin/login',
        headers: { accept: 'application/json' },
        payload: { username: 'alice', password },
      });
    expect((await attempt('wrong-password')).statusCode).toBe(401);
    expect((await attempt('alice-password')).statusCode).toBe(429);
    expect(await userCommand(['unlock', 'alice', '--db', env.path], io)).toBe(0);
    expect(out).toContain('login throttling of "alice" lifted');
    expect((await attempt('alice-password')).statusCode).toBe(200);
    await expect(userCommand(['unlock', 'nobody', '--db', env.path], io)).rejects.toThrow(/no user/);
    await app.close();
    await store.close();
  });

  it('creates, lists and revokes tokens, printing the secret once', async () => {
    const args = [
      'create',
      '--name',
      'ci',
      '--role',
      'operator',
      '--models',
      'llama3,qwen',
      '--expires',
      '30d',
      '--rpm',
      '60',
      '--tpd',
      '100000',
    ];
    expect(await tokenCommand([...args, '--db', env.path], io)).toBe(0);
    const secret = out.find((l) => l.startsWith('corral_'))!;
    expect(secret).toMatch(/^corral_[A-Za-z0-9_-]{43}$/);
    const store = openDatabase(env.path);
    const check = await checkApiToken(store, secret);
    expect(check.ok && check.row).toMatchObject({
      name: 'ci',
      role: 'operator',
      rpm: 60,
      tpd: 100000,
      models: '["llama3","qwen"]',
    });
    await store.close();
    out.length = 0;
    await tokenCommand(['list', '--db', env.path], io);
    expect(out[0]).toMatch(/^1\tci\toperator\tactive\tllama3,qwen\t60/);
    expect(out.join('\n')).not.toContain(secret);
    expect(await tokenCommand(['revoke', '1', '--db', env.path], io)).toBe(0);
    expect(await tokenCommand(['revoke', '1', '--db', env.path], io)).toBe(1);
    out.length = 0;
    await tokenCommand(['list', '--db', env.path], io);
    expect(out[0]).toContain('revoked');
  });
});
