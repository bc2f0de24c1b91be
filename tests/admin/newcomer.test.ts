import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import type { BrowserContext, Page } from 'playwright-core';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/runner/free-port.js';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { builtCli } from '../helpers/cli.js';
import { waitFor } from './helpers.js';

const ARTIFACTS = join(new URL('../..', import.meta.url).pathname, 'tests', 'artifacts');
const fixtures = inject('fixtures');
const PASSWORD = 'first-hour-password';

/**
 * A newcomer's first hour, end to end against `corral serve` run as a program: the setup link it
 * prints, logging in, a GGUF copied into the models directory while it runs, a chat in the
 * playground, a token for the official `ollama` client, and that client's request in Activity.
 */
describe.skipIf(!existsSync(CHROMIUM))("a newcomer's path through Corral", () => {
  let dir: string;
  let gateway: ChildProcess;
  let base: string;
  let setupPath: string;
  let context: BrowserContext;
  let page: Page;
  let output = '';
  const problems: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `newcomer-${name}.png`), fullPage: true });

  beforeAll(async () => {
    const cli = await builtCli();
    await mkdir(ARTIFACTS, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), 'corral-newcomer-'));
    await mkdir(join(dir, 'config'));
    // What a newcomer's config amounts to: no models; the suite's llama-server so nothing is built.
    await writeFile(
      join(dir, 'config', 'corral.yaml'),
      stringify({
        llama_server: { binary: fixtures.llamaServer, args: ['-t', '1', '--ignore-eos'] },
        defaults: { ctx_size: 512 },
        ollama_store: 'off',
      }),
    );
    const port = await freePort('127.0.0.1');
    base = `http://127.0.0.1:${port}`;
    const env = { ...process.env, CORRAL_ADMIN_PASSWORD: '', CORRAL_LOG_LEVEL: 'info' };
    gateway = spawn(cli, ['serve', '--config', 'config/corral.yaml', '--host', '127.0.0.1', '--port', String(port)], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.setEncoding('utf8').on('data', (c: string) => void (output += c));
    gateway.stderr!.setEncoding('utf8').on('data', (c: string) => void (output += c));
    const exited = once(gateway, 'exit').then(() => Promise.reject(new Error(`corral exited:\n${output}`)));
    exited.catch(() => {});
    // The first start prints a one-time setup link; the page at it creates the first admin.
    await Promise.race([
      exited,
      waitFor(async () => {
        const ok = await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        );
        return ok && /\/admin\/setup\?token=[\w-]+/.test(output);
      }, 60_000),
    ]);
    setupPath = /\/admin\/setup\?token=[\w-]+/.exec(output)![0];

    context = await launchChromium(await mkdtemp(join(dir, 'profile-')), { viewport: { width: 1200, height: 850 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    if (gateway && gateway.exitCode === null) {
      gateway.kill('SIGTERM');
      await once(gateway, 'exit');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates the first admin through the printed setup link, then logs out and in', async () => {
    await page.goto(`${base}${setupPath}`);
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${base}/admin`), page.click('form[action="/admin/setup"] button')]);
    expect(await page.locator('.who .user').textContent()).toBe('admin (admin)');
    await Promise.all([page.waitForURL(`${base}/admin/login`), page.click('form[action="/admin/logout"] button')]);
    // Logged out: no menu, and nobody named.
    expect(await page.locator('nav a').count()).toBe(0);
    expect(await page.locator('.who .user').count()).toBe(0);
    await shot('login');
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${base}/admin`), page.click('form[action="/admin/login"] button')]);
    expect(await page.locator('.who .user').textContent()).toBe('admin (admin)');
  });

  it('shows a model on the open dashboard once a GGUF is copied into the models directory', async () => {
    expect(await page.locator('tr[data-model]').count()).toBe(0);
    await page.evaluate('window.stayed = true');
    await copyFile(fixtures.models.chat, join(dir, 'data', 'models', 'my-first-model.gguf'));
    const row = page.locator('tr[data-model="my-first-model:latest"]');
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    // It arrived over the live feed: the page was never reloaded.
    expect(await page.evaluate('window.stayed')).toBe(true);
    expect(await row.locator('[data-testid="state"]').textContent()).toBe('stopped');
    await shot('dashboard');
  });

  it('chats with it in the playground', async () => {
    await page.click('nav a[href="/admin/playground"]');
    await page.waitForURL(`${base}/admin/playground`);
    expect(await page.locator('select[name="model"]').inputValue()).toBe('my-first-model:latest');
    await page.fill('input[name="num_predict"]', '8');
    await page.fill('textarea[name="prompt"]', 'Hello, Corral');
    await page.click('[data-send]');
    await expect.poll(() => page.locator('[data-timings] dt').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(((await page.locator('[data-testid="answer"]').textContent()) ?? '').length).toBeGreaterThan(0);
    expect(await page.locator('[data-timings]').textContent()).toMatch(/Tokens generated8/);
    await shot('playground');
  });

  let secret = '';
  it('creates a token limited to that model, its secret shown once', async () => {
    await page.click('nav a[href="/admin/tokens"]');
    await page.waitForURL(`${base}/admin/tokens`);
    await page.fill('input[name="name"]', 'newcomer-client');
    await page.check('input[name="models"][value="my-first-model:latest"]');
    await page.selectOption('select[name="expires"]', '30d');
    await page.fill('input[name="rpm"]', '60');
    await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/admin/tokens` && r.request().method() === 'GET'),
      page.click('form[action="/admin/tokens"] button[type="submit"]'),
    ]);
    await page.waitForLoadState('load');
    secret = await page.locator('[data-testid="new-secret"]').inputValue();
    expect(secret).toMatch(/^corral_[\w-]{43}$/);
    const row = page.locator('tr', { has: page.locator('th', { hasText: 'newcomer-client' }) });
    expect(await row.locator('td[data-label="Models"]').textContent()).toBe('my-first-model:latest');
    expect(await row.locator('td[data-label="Limits"]').textContent()).toBe('60/min');
    expect(await row.locator('td[data-label="Expires"]').textContent()).not.toBe('never');
    await shot('token');
  });

  it('uses the token with the official ollama client, and the request appears in the open Activity page', async () => {
    await page.click('nav a[href="/admin/activity"]');
    await page.waitForURL(`${base}/admin/activity`);
    await page.evaluate('window.stayed = true');
    const mine = page.locator('tr[data-status="200"]', { hasText: 'newcomer-client' });
    expect(await mine.count()).toBe(0);

    const client = new Ollama({ host: base, headers: { authorization: `Bearer ${secret}` } });
    expect((await client.list()).models.map((m) => m.name)).toEqual(['my-first-model:latest']);
    const reply = await client.chat({
      model: 'my-first-model',
      messages: [{ role: 'user', content: 'Hi from the ollama client' }],
      options: { num_predict: 4 },
    });
    expect(reply.done).toBe(true);
    expect(reply.eval_count).toBe(4);

    await expect.poll(() => mine.count(), { timeout: 15_000 }).toBe(1);
    expect(await mine.locator('td[data-label="Endpoint"]').textContent()).toBe('/api/chat');
    expect(await mine.locator('td[data-label="Model"]').textContent()).toBe('my-first-model:latest');
    expect(await mine.locator('td[data-label="Tokens"]').textContent()).toMatch(/ \/ 4$/);
    expect(await page.evaluate('window.stayed')).toBe(true);
    await shot('activity');
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
