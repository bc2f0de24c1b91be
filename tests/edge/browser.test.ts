import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const fixtures = inject('fixtures');

/**
 * A page on another site, served by the test: "evil.test" is mapped to 127.0.0.1 in Chromium, the
 * way a page the user visits (or a DNS-rebound name) reaches a local Corral.
 */
function pageServer(): Promise<Server> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>page</title><p>a page on some site</p>');
  });
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => server);
}

describe.skipIf(!existsSync(CHROMIUM))('a web page in Chromium against a loopback-open Corral', () => {
  let t: TestGateway;
  let site: Server;
  let sitePort: number;
  let corralPort: string;
  let context: BrowserContext;
  let page: Page;
  let profile: string;

  beforeAll(async () => {
    t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    corralPort = new URL(t.url).port;
    site = await pageServer();
    sitePort = (site.address() as AddressInfo).port;
    profile = await mkdtemp(join(tmpdir(), 'corral-chromium-'));
    context = await launchChromium(profile, { args: ['--host-resolver-rules=MAP evil.test 127.0.0.1'] });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    site?.close();
    await t?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('refuses a text/plain "simple" request from a page on another site, so no model loads', async () => {
    await page.goto(`http://evil.test:${sitePort}/`);
    // No preflight for text/plain: the browser sends it and the page only cannot read the answer.
    const posted = page.waitForResponse((r) => r.url().endsWith('/api/generate'));
    await page.evaluate(`fetch('http://127.0.0.1:${corralPort}/api/generate', {
      method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ model: 'tiny', prompt: '' }),
    }).then(() => 'sent')`);
    expect((await posted).status()).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('refuses the same page posting a form, and asking for the model list', async () => {
    await page.goto(`http://evil.test:${sitePort}/`);
    // Submitted after evaluate returns: the navigation would otherwise destroy the context it runs in.
    const posted = page.waitForResponse((r) => r.url().endsWith('/api/generate'));
    await page.evaluate(`(() => {
      const f = document.createElement('form');
      f.method = 'POST'; f.enctype = 'text/plain'; f.action = 'http://127.0.0.1:${corralPort}/api/generate';
      const i = document.createElement('input'); i.name = '{"model":"tiny","prompt":"","x":"'; i.value = '"}';
      f.append(i); document.body.append(f); setTimeout(() => f.submit(), 0);
    })()`);
    expect((await posted).status()).toBe(403);
    // The form navigated the page to Corral's refusal; that navigation ends before the next starts.
    await page.waitForURL(/\/api\/generate$/);
    await page.goto(`http://evil.test:${sitePort}/`);
    const asked = page.waitForResponse((r) => r.url().endsWith('/api/tags'));
    await page.evaluate(`fetch('http://127.0.0.1:${corralPort}/api/tags', { mode: 'no-cors' }).then(() => 'sent')`);
    expect((await asked).status()).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('refuses a DNS-rebound name for 127.0.0.1', async () => {
    const res = await page.goto(`http://evil.test:${corralPort}/api/tags`);
    expect(res?.status()).toBe(403);
    expect(await page.textContent('body')).toContain('not allowed');
  });

  it('serves a page on an allowed origin (localhost) through CORS, preflight included', async () => {
    await page.goto(`http://localhost:${sitePort}/`);
    const answer = (await page.evaluate(`fetch('http://127.0.0.1:${corralPort}/api/generate', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: '' }),
    }).then(async (r) => ({ status: r.status, body: await r.json() }))`)) as {
      status: number;
      body: { done_reason?: string };
    };
    expect(answer.status).toBe(200);
    expect(answer.body.done_reason).toBe('load');
    expect(t.gw.scheduler.loaded().map((l) => l.name)).toEqual(['tiny:latest']);
  });
});
