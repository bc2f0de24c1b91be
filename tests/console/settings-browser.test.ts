import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import type { ReloadState } from '../../src/gateway.js';
import { CHROMIUM } from '../helpers/chromium.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../scheduler/helpers.js';
import { ensureUser } from '../admin/helpers.js';
import { browserLoggedIn, type BrowserSession } from './browser-session.js';

const fixtures = inject('fixtures');

/** A config written by a person: comments and order that a save from the browser must keep. */
const configText = (
  binary: string,
  model: string,
): string => `# Corral for the settings test: this header comment must survive saves.
llama_server:
  binary: ${binary}
  args: ['-t', '1', '--ignore-eos']  # one thread: the machine is shared
  stop_timeout: 5s
ollama_store: 'off'
defaults:
  ctx_size: 512 # small contexts keep tests fast
models:
  # The model the form edits.
  tiny:
    path: ${model}
    options:
      temperature: 0.8 # sampling default
`;

describe.skipIf(!existsSync(CHROMIUM))('model settings from the browser', () => {
  let t: TestGateway;
  let browser: BrowserSession;
  let page: Page;

  const rewrite = async (text: string): Promise<ReloadState> => {
    const reloaded = once(t.gw.events, 'reload') as Promise<[ReloadState]>;
    await writeFile(t.configFile, text);
    return (await reloaded)[0];
  };

  beforeAll(async () => {
    t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    expect((await rewrite(configText(fixtures.llamaServer, fixtures.models.chat))).ok).toBe(true);
    await ensureUser(t, 'olivia', 'operator');
    browser = await browserLoggedIn(t, 'olivia');
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('saves temperature and context into the YAML, restarts the running model with the new context, audits the diff', async () => {
    expect((await post(`${t.url}/api/generate`, { model: 'tiny', prompt: '' })).status).toBe(200);
    const before = t.gw.scheduler.loaded().find((l) => l.name === 'tiny:latest')!;
    expect(before.ctxSize).toBe(512);

    await page.goto(`${t.url}/admin/model?name=tiny:latest`);
    const form = page.locator('#model-settings form');
    expect(await form.locator('input[name="temperature"]').inputValue()).toBe('0.8');
    await form.locator('input[name="temperature"]').fill('0.3');
    await form.locator('input[name="ctx_size"]').fill('1024');
    const restarted = until(t.gw.scheduler, () => {
      const l = t.gw.scheduler.loaded().find((m) => m.name === 'tiny:latest');
      return l !== undefined && l.pid !== before.pid && l.state === 'ready';
    });
    await form.locator('button[type="submit"]').click();
    const saved = page.locator('[data-testid="settings-saved"]');
    await saved.waitFor({ timeout: 15_000 });
    expect(await saved.textContent()).toContain('temperature: 0.8 → 0.3');

    const text = await readFile(t.configFile, 'utf8');
    expect(text).toContain('# Corral for the settings test: this header comment must survive saves.');
    expect(text).toContain('# one thread: the machine is shared');
    expect(text).toContain('# The model the form edits.');
    expect(text).toContain('# small contexts keep tests fast');
    const yaml = parse(text) as { models: { tiny: { options: { temperature: number }; ctx_size: number } } };
    expect(yaml.models.tiny.options.temperature).toBe(0.3);
    expect(yaml.models.tiny.ctx_size).toBe(1024);
    // Key order is kept: the model's entry stays where it was, under the same comment.
    expect(text.indexOf('llama_server:')).toBeLessThan(text.indexOf('models:'));

    await restarted;
    const after = t.gw.scheduler.loaded().find((l) => l.name === 'tiny:latest')!;
    expect(after.ctxSize).toBe(1024);
    expect(after.runner.command.join(' ')).toMatch(/(^| )-c 1024( |$)/);

    const audit = await t.gw.store.auditLog.recent({ action: 'model.settings' });
    expect(audit[0]).toMatchObject({ actor: 'olivia', target: 'tiny:latest', outcome: 'success' });
    expect(audit[0]!.detail).toContain('temperature: 0.8 → 0.3');
    expect(audit[0]!.detail).toContain('ctx_size: (unset) → 1024');
    await page.reload();
    expect(await page.locator('[data-testid="settings-history"]').textContent()).toContain('ctx_size: (unset) → 1024');
  });

  it('refuses to save over a hand edit made after the form was loaded', async () => {
    await page.goto(`${t.url}/admin/model?name=tiny:latest`);
    const handEdited = (await readFile(t.configFile, 'utf8')).replace('temperature: 0.3', 'temperature: 0.9 # by hand');
    expect((await rewrite(handEdited)).ok).toBe(true);

    await page.locator('#model-settings input[name="temperature"]').fill('0.1');
    await page.locator('#model-settings button[type="submit"]').click();
    const conflict = page.locator('[data-testid="settings-conflict"]');
    await conflict.waitFor({ timeout: 15_000 });
    expect(await conflict.textContent()).toMatch(/changed since this form was loaded/);
    expect(await readFile(t.configFile, 'utf8')).toBe(handEdited);
    // What the user typed is still there, and the Reload link leads to the current values.
    expect(await page.locator('#model-settings input[name="temperature"]').inputValue()).toBe('0.1');
    await page.locator('[data-testid="settings-conflict"] a').click();
    await page.waitForLoadState();
    expect(await page.locator('#model-settings input[name="temperature"]').inputValue()).toBe('0.9');
  });

  it('an operator cannot change llama-server args: the field is disabled and the server refuses it', async () => {
    await page.goto(`${t.url}/admin/model?name=tiny:latest`);
    expect(await page.locator('#model-settings textarea[name="args"]').isDisabled()).toBe(true);
    // Submitted anyway (as a script could), the server checks the field itself.
    const status = await page.evaluate(`(async () => {
      const form = document.querySelector('#model-settings form');
      const body = new URLSearchParams(new FormData(form));
      body.set('args', '--flash-attn\\nauto');
      const res = await fetch('/admin/model/settings', {
        method: 'POST', body, headers: { 'hx-request': 'true', 'x-csrf-token': document.querySelector('meta[name="csrf-token"]').content },
      });
      return res.status;
    })()`);
    expect(status).toBe(403);
    expect(await readFile(t.configFile, 'utf8')).not.toContain('flash-attn');
    const denied = (await t.gw.store.auditLog.recent({ action: 'model.settings' }))[0]!;
    expect(denied).toMatchObject({ actor: 'olivia', outcome: 'failure' });
  });
});
