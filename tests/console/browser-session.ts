import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { PASSWORD } from '../admin/helpers.js';
import { launchChromium } from '../helpers/chromium.js';
import type { TestGateway } from '../helpers/gateway.js';

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** The browser profile directory (also a scratch directory for files to upload). */
  profile: string;
  /** Script errors and failed console messages the page reported. */
  errors: string[];
  close(): Promise<void>;
}

/** Headless Chromium logged in to `t` as `username` through the login form. */
export async function browserLoggedIn(t: TestGateway, username: string): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), 'corral-chromium-'));
  const context = await launchChromium(profile, { viewport: { width: 1200, height: 900 } });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${t.url}/admin/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([
    page.waitForURL(`${t.url}/admin`),
    page.click('form[action="/admin/login"] button[type="submit"]'),
  ]);
  return {
    context,
    page,
    profile,
    errors,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
