import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { editConfig, pidOf } from './helpers.js';

let t: TestGateway;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({
    models: { a: { path: fixtures.models.chat, pinned: true }, b: { path: fixtures.models.chat2, pinned: true } },
  });
  await t.gw.pinned;
});
afterAll(async () => t?.close());

const gen = (model: string) =>
  post(`${t.url}/api/generate`, { model, prompt: 'x', stream: false, options: { num_predict: 1 } });

describe('config hot reload', () => {
  it('invalid YAML is rejected with file:line, the old config keeps serving; fixing it applies again', async () => {
    const before = await editConfig(t, () => 'models:\n  a: { path: [unclosed\n');
    expect(before.ok).toBe(false);
    expect(before.problems[0]).toMatch(/corral\.yaml:\d+: /);
    expect(t.gw.reloadState()).toBe(before);
    expect((await gen('a')).status).toBe(200);
    expect(t.gw.config().models.a).toBeDefined();

    const invalid = await editConfig(t, (c) => void (c.scheduler = { max_loaded_models: 'many' }));
    expect(invalid.ok).toBe(false);
    expect(invalid.problems[0]).toMatch(/corral\.yaml:\d+: scheduler\.max_loaded_models/);

    const fixed = await editConfig(t, (c) => void delete c.scheduler);
    expect(fixed.ok).toBe(true);
    expect(fixed.changes).toEqual([]);
  });

  it("editing one model's args restarts it when idle; the other keeps its process", async () => {
    const pidA = pidOf(t, 'a:latest')!;
    const pidB = pidOf(t, 'b:latest')!;
    const unloaded = once(t.gw.scheduler, 'unloaded');
    const loaded = once(t.gw.scheduler, 'loaded');
    const state = await editConfig(t, (c) => void (c.models.a.args = ['-b', '256']));
    expect(state.ok).toBe(true);
    expect(state.changes).toContain('model a changed (args)');
    expect(await unloaded).toEqual(['a:latest', 'config changed']);
    expect((await loaded)[0]).toBe('a:latest');
    expect(pidOf(t, 'a:latest')).not.toBe(pidA);
    expect(t.gw.scheduler.loaded().find((l) => l.name === 'a:latest')!.runner.command).toContain('256');
    expect(pidOf(t, 'b:latest')).toBe(pidB);
  });

  it('new models appear, removed ones stop, and ${VAR:-default} is interpolated', async () => {
    const pidB = pidOf(t, 'b:latest')!;
    const unloaded = once(t.gw.scheduler, 'unloaded');
    const state = await editConfig(t, (c) => {
      delete c.models.a;
      c.models.c = { path: `\${CORRAL_TEST_UNSET_VAR:-${fixtures.models.fim}}` };
    });
    expect(state.ok).toBe(true);
    expect(state.changes).toEqual(expect.arrayContaining(['model a removed', 'model c added']));
    expect(await unloaded).toEqual(['a:latest', 'removed from config']);
    expect((await gen('c')).status).toBe(200);
    expect((await gen('a')).status).toBe(404);
    expect(pidOf(t, 'b:latest')).toBe(pidB);
  });
});
