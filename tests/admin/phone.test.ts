import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { ensureUser, PASSWORD } from './helpers.js';

const ARTIFACTS = join(new URL('../..', import.meta.url).pathname, 'tests', 'artifacts');
const fixtures = inject('fixtures');
const WIDTH = 390;

/** Every admin page at a phone's width (390 CSS px): nothing makes the page wider than the screen. */
describe.skipIf(!existsSync(CHROMIUM))('admin pages at phone width in Chromium', () => {
  let t: TestGateway;
  let context: BrowserContext;
  let page: Page;
  let profile: string;

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    // Long names and paths are what push a narrow page sideways.
    t = await startGateway({
      models: {
        'a-rather-long-model-name-for-a-narrow-screen': { path: fixtures.models.chat },
        other: { path: fixtures.models.chat2 },
      },
    });
    await ensureUser(t, 'admin', 'admin');
    for (let i = 0; i < 3; i++)
      await createApiToken(t.gw.store, {
        name: `token-with-a-long-name-${i}`,
        role: 'viewer',
        models: ['other'],
        rpm: 60,
      });
    await post(`${t.url}/api/generate`, {
      model: 'a-rather-long-model-name-for-a-narrow-screen',
      prompt: 'hi',
      stream: false,
      options: { num_predict: 2 },
    });
    await post(`${t.url}/api/generate`, { model: 'no-such-model', prompt: 'hi' });
    profile = await mkdtemp(join(tmpdir(), 'corral-chromium-'));
    context = await launchChromium(profile, { viewport: { width: WIDTH, height: 844 } });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    await t?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  /** How far the page reaches past the viewport's right edge, and which elements do it. */
  const overflow = async (): Promise<{ excess: number; culprits: string[] }> =>
    (await page.evaluate(`(() => {
      const width = document.documentElement.clientWidth;
      const culprits = [];
      for (const el of document.body.querySelectorAll('*')) {
        // Inside a scrolling box (a wide table's wrapper) is fine: that box scrolls, not the page.
        if (el.closest('.table-wrap, pre')) continue;
        const r = el.getBoundingClientRect();
        if (r.right > width + 1) culprits.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
      }
      return { excess: document.documentElement.scrollWidth - width, culprits: culprits.slice(0, 5) };
    })()`)) as { excess: number; culprits: string[] };

  it('logs in at phone width', async () => {
    await page.goto(`${t.url}/admin/login`);
    expect((await overflow()).excess).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, 'phone-login.png'), fullPage: true });
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${t.url}/admin`), page.click('form[action="/admin/login"] button')]);
  });

  const pages = [
    ['dashboard', '/admin'],
    ['activity', '/admin/activity'],
    ['playground', '/admin/playground'],
    ['pull', '/admin/pull'],
    ['tokens', '/admin/tokens'],
    ['users', '/admin/users'],
    ['config', '/admin/config'],
    ['system', '/admin/system'],
    ['model', '/admin/model?name=a-rather-long-model-name-for-a-narrow-screen'],
    ['not-found', '/admin/no-such-page'],
  ] as const;
  for (const [name, url] of pages) {
    it(`fits ${url} in ${WIDTH} px (tables scroll in their box or become cards)`, async () => {
      await page.goto(`${t.url}${url}`);
      await page.waitForLoadState('load');
      await page.screenshot({ path: join(ARTIFACTS, `phone-${name}.png`), fullPage: true });
      const { excess, culprits } = await overflow();
      expect(excess, culprits.join('\n')).toBeLessThanOrEqual(0);
      // Every table either fits or sits in a box that scrolls sideways on its own.
      const tables = (await page.evaluate(`[...document.querySelectorAll('table')].map((t) => {
        const wrap = t.closest('.table-wrap');
        return { fits: t.getBoundingClientRect().width <= document.documentElement.clientWidth,
                 scrolls: !!wrap && getComputedStyle(wrap).overflowX === 'auto' };
      })`)) as { fits: boolean; scrolls: boolean }[];
      for (const table of tables) expect(table.fits || table.scrolls).toBe(true);
    });
  }

  it('turns the rows of the tokens and requests tables into labelled cards', async () => {
    await page.goto(`${t.url}/admin/tokens`);
    const before = await page.evaluate(
      `getComputedStyle(document.querySelector('table.reflow tbody td[data-label="Models"]'), '::before').content`,
    );
    expect(before).toBe('"Models"');
    const table = page.locator('table.reflow').first();
    expect((await table.boundingBox())!.width).toBeLessThanOrEqual(WIDTH);
    await page.goto(`${t.url}/admin/activity`);
    expect(await page.locator('table.reflow thead').first().isVisible()).toBe(false);
  });
});
