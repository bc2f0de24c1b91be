import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ensureUser, PASSWORD } from './helpers.js';

const ARTIFACTS = join(new URL('../..', import.meta.url).pathname, 'tests', 'artifacts');
const fixtures = inject('fixtures');

describe.skipIf(!existsSync(CHROMIUM))('admin UI in headless Chromium', () => {
  let t: TestGateway;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const errors: string[] = [];

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    t = await startGateway({
      models: { tiny: { path: fixtures.models.chat }, other: { path: fixtures.models.chat2 } },
    });
    await ensureUser(t, 'admin', 'admin');
    profile = await mkdtemp(join(tmpdir(), 'corral-chromium-'));
    context = await launchChromium(profile, { viewport: { width: 1200, height: 800 } });
    page = context.pages()[0] ?? (await context.newPage());
    // A CSP violation or script error would show up here: the UI must run without inline script.
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
    });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    await t?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  it('logs in through the login form and lands on the dashboard', async () => {
    // Anonymous: the dashboard sends the browser to the login form.
    await page.goto(`${t.url}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', PASSWORD);
    await shot('login');
    await Promise.all([
      page.waitForURL(`${t.url}/admin`),
      page.locator('form[action="/admin/login"] button[type="submit"]').click(),
    ]);
    expect(new URL(page.url()).pathname).toBe('/admin');
    expect(await page.locator('.who .user').textContent()).toBe('admin (admin)');
    expect(await page.locator('form[action="/admin/logout"]').count()).toBe(1);
  });

  it('shows every model on the dashboard', async () => {
    await page.goto(`${t.url}/admin`);
    await expect.poll(() => page.locator('tr[data-model]').count()).toBe(2);
    expect(await page.locator('tr[data-model="tiny:latest"] [data-testid="state"]').textContent()).toBe('stopped');
    await shot('dashboard-light');
  });

  it('loads a model from the dashboard and watches its state change live', async () => {
    // A marker on window survives only if HTMX handled the click (a plain form post would navigate).
    await page.evaluate('window.stayed = true');
    await page.locator('tr[data-model="tiny:latest"] button', { hasText: 'load' }).first().click();
    const state = page.locator('tr[data-model="tiny:latest"] [data-testid="state"]');
    await expect.poll(() => state.textContent(), { timeout: 30_000 }).toBe('ready');
    expect(await page.locator('[data-testid="loaded-count"]').textContent()).toBe('1');
    expect(await page.evaluate('window.stayed')).toBe(true);
    // A change made elsewhere (the API) arrives over SSE without a reload.
    await fetch(`${t.url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'other', prompt: '' }) });
    await expect
      .poll(() => page.locator('tr[data-model="other:latest"] [data-testid="state"]').textContent(), {
        timeout: 30_000,
      })
      .toBe('ready');
    await shot('dashboard-loaded');
  });

  it('streams a playground chat token by token with timings', async () => {
    await page.goto(`${t.url}/admin/playground?model=tiny:latest`);
    await page.fill('input[name="num_predict"]', '24');
    await page.fill('input[name="seed"]', '42');
    await page.fill('textarea[name="prompt"]', 'Hello there');
    const answer = page.locator('[data-testid="answer"]');
    // Record every intermediate text the answer shows: more than one means it grew piece by piece.
    // (Page code is passed as text: the test project compiles without DOM types.)
    await page.evaluate(`
      window.seen = [];
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes) if (n.nodeType === 3) window.seen.push(n.data.length);
      }).observe(document.querySelector('[data-chat]'), { childList: true, subtree: true });
    `);
    await page.click('[data-send]');
    await expect.poll(() => page.locator('[data-timings] dt').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect((await answer.textContent())!.length).toBeGreaterThan(0);
    const seen = (await page.evaluate('window.seen')) as number[];
    expect(new Set(seen.filter((n) => n > 0)).size).toBeGreaterThan(1);
    expect(await page.locator('[data-timings]').textContent()).toMatch(/Tokens generated24/);
    await shot('playground');
  });

  it('shows a live log line appear on the model page', async () => {
    await page.goto(`${t.url}/admin/model?name=tiny:latest`);
    const log = page.locator('#log');
    await expect.poll(async () => ((await log.textContent()) ?? '').length, { timeout: 10_000 }).toBeGreaterThan(0);
    const before = (await log.textContent()) ?? '';
    // A request makes llama-server log new lines, which must arrive without a reload.
    await fetch(`${t.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'tiny', prompt: 'log me', stream: false, options: { num_predict: 2 } }),
    });
    await expect
      .poll(async () => ((await log.textContent()) ?? '').length, { timeout: 10_000 })
      .toBeGreaterThan(before.length);
    await page.fill('[data-log-search]', 'slot');
    expect(
      ((await log.textContent()) ?? '')
        .split('\n')
        .filter(Boolean)
        .every((l) => l.toLowerCase().includes('slot')),
    ).toBe(true);
    await page.fill('[data-log-search]', '');
    await shot('model-page');
  });

  it('is keyboard accessible with a visible focus ring', async () => {
    await page.goto(`${t.url}/admin`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    await page.keyboard.press('Tab');
    const outline = (await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')) as string;
    expect(outline).not.toBe('none');
    // Unload from the keyboard: focus the button and press Enter; the row follows over SSE.
    await page.locator('tr[data-model="other:latest"] button', { hasText: 'unload' }).focus();
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.locator('tr[data-model="other:latest"] [data-testid="state"]').textContent(), {
        timeout: 30_000,
      })
      .toBe('stopped');
  });

  it('creates a token, shows its secret once, makes no second one on reload, and revokes it', async () => {
    await page.goto(`${t.url}/admin/tokens`);
    await page.fill('form[action="/admin/tokens"] input[name="name"]', 'e2e-token');
    await page.selectOption('form[action="/admin/tokens"] select[name="role"]', 'viewer');
    // Post/redirect/get: the form's POST answers 303 and the browser lands on the list with the secret.
    await Promise.all([
      page.waitForResponse((r) => r.url() === `${t.url}/admin/tokens` && r.request().method() === 'GET'),
      page.locator('form[action="/admin/tokens"] button[type="submit"]').click(),
    ]);
    await page.waitForLoadState('load');
    const secretBox = page.locator('[data-testid="new-secret"]');
    await expect.poll(() => secretBox.count()).toBe(1);
    const secret = await secretBox.inputValue();
    expect(secret).toMatch(/^corral_[\w-]{20,}$/);
    const row = page.locator('tr', { has: page.locator('th[scope="row"]', { hasText: 'e2e-token' }) });
    expect(await row.locator('[data-testid="token-status"]').textContent()).toBe('active');
    expect(await row.locator('code').textContent()).toBe(`${secret.slice(0, 13)}…`);
    await shot('token-created');
    // The secret works against the API ...
    const tags = () => fetch(`${t.url}/api/tags`, { headers: { authorization: `Bearer ${secret}` } });
    expect((await tags()).status).toBe(200);
    // ... and a reload neither shows it again nor creates another token.
    const count = (await t.gw.store.apiTokens.list()).length;
    await page.reload();
    expect(await secretBox.count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    expect(await t.gw.store.apiTokens.list()).toHaveLength(count);
    // Revoking redirects (303) back to the list.
    await Promise.all([
      page.waitForResponse((r) => r.url() === `${t.url}/admin/tokens` && r.request().method() === 'GET'),
      row.locator('button', { hasText: 'Revoke' }).click(),
    ]);
    await page.waitForLoadState('load');
    await expect.poll(() => row.locator('[data-testid="token-status"]').textContent()).toBe('revoked');
    expect(await row.locator('button', { hasText: 'Revoke' }).count()).toBe(0);
    await shot('token-revoked');
    // A revoked token is refused (checked out of the page, so the 401 is not a page error).
    expect((await tags()).status).toBe(401);
  });

  it('renders dark and at phone width, with no script or CSP errors', async () => {
    await page.goto(`${t.url}/admin`);
    await page.click('[data-theme-toggle]');
    const bg = (await page.evaluate('getComputedStyle(document.body).backgroundColor')) as string;
    await shot('dashboard-toggled');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('dashboard-phone');
    expect(bg).toMatch(/rgb/);
    for (const url of ['/admin/system', '/admin/config', '/admin/pull', '/admin/activity', '/admin/tokens']) {
      await page.goto(`${t.url}${url}`);
      await shot(url.slice(7).replace(/\//g, '_'));
    }
    expect(errors, errors.join('\n')).toEqual([]);
  });
});
