import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { form, loginAs, type Session } from '../admin/helpers.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const fixtures = inject('fixtures');

describe('the model Settings form (server side)', () => {
  let t: TestGateway;
  let admin: Session;

  /** The version the Settings form of `model` carries now. */
  const version = async (s: Session, model: string): Promise<string> => {
    const page = await t.gw.app.inject({ url: `/admin/model?name=${model}`, headers: { cookie: s.cookie } });
    return /name="version" value="([0-9a-f]+)"/.exec(page.body)![1]!;
  };
  const save = async (s: Session, fields: Record<string, string>, v?: string) => {
    const model = fields.name!;
    return t.gw.app.inject({
      method: 'POST',
      url: '/admin/model/settings',
      headers: {
        cookie: s.cookie,
        'x-csrf-token': s.csrf,
        'hx-request': 'true',
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: form({ version: v ?? (await version(s, model)), ...fields }),
    });
  };

  beforeAll(async () => {
    t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    await copyFile(fixtures.models.chat2, join(t.dir, 'data', 'models', 'disc.gguf'));
    await t.gw.catalog.refresh();
    admin = await loginAs(t, 'admin');
  });
  afterAll(() => t?.close());

  it('gives a discovered model a config entry on its first save, args included for an admin', async () => {
    expect(t.gw.catalog.resolve('disc')?.source).toBe('discovered');
    const page = await t.gw.app.inject({ url: '/admin/model?name=disc:latest', headers: { cookie: admin.cookie } });
    expect(page.body).toContain('this model gets an entry there on the first save');
    const res = await save(admin, { name: 'disc:latest', ctx_size: '1024', args: '-b\n256', aliases: 'small, tiny2' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('data-testid="settings-saved"');
    const yaml = parse(await readFile(t.configFile, 'utf8')) as { models: Record<string, unknown> };
    expect(yaml.models.disc).toEqual({
      path: '../data/models/disc.gguf',
      ctx_size: 1024,
      aliases: ['small', 'tiny2'],
      args: ['-b', '256'],
    });
    // Applied by the reload the save set off: one model, now configured, reachable by its aliases.
    const m = t.gw.catalog.resolve('small')!;
    expect(m).toMatchObject({ name: 'disc:latest', source: 'config', ctxSize: 1024, args: ['-b', '256'] });
    expect(t.gw.catalog.list().filter((x) => x.path === m.path)).toHaveLength(1);
    const audit = (await t.gw.store.auditLog.recent({ action: 'model.settings' }))[0]!;
    expect(audit.detail).toContain('args: (unset) → ["-b","256"]');
  });

  it('reports every invalid field at once and writes nothing', async () => {
    const before = await readFile(t.configFile, 'utf8');
    const res = await save(admin, {
      name: 'tiny:latest',
      temperature: 'warm',
      top_p: '2',
      parallel: '0',
      group: 'a b',
    });
    expect(res.statusCode).toBe(400);
    for (const problem of [
      'temperature must be a number from 0 to 10',
      'top_p must be a number from 0 to 1',
      'parallel must be a whole number from 1 to 256',
      'group must be a name of letters',
    ])
      expect(res.body).toContain(problem);
    expect(res.body).toContain('value="warm"');
    expect(await readFile(t.configFile, 'utf8')).toBe(before);
    const invalid = await save(admin, { name: 'tiny:latest', keep_alive: 'soon' });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.body).toMatch(/corral\.yaml:\d+: models\.tiny\.keep_alive: invalid duration/);
  });

  it('refuses a stale form, and a viewer altogether', async () => {
    const stale = await save(admin, { name: 'tiny:latest', temperature: '0.5' }, '0'.repeat(32));
    expect(stale.statusCode).toBe(409);
    expect(stale.body).toContain('data-testid="settings-conflict"');
    const viewer = await loginAs(t, 'viewer');
    const page = await t.gw.app.inject({ url: '/admin/model?name=tiny:latest', headers: { cookie: viewer.cookie } });
    expect(page.body).toMatch(/<fieldset disabled>/);
    expect(page.body).not.toContain('Save settings');
    const refused = await save(viewer, { name: 'tiny:latest', temperature: '0.5' });
    expect(refused.statusCode).toBe(403);
  });
});
