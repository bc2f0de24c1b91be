import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { writeStoreModel } from '../helpers/ollama-store.js';
import { ensureUser, PASSWORD, waitFor } from './helpers.js';

const fixtures = inject('fixtures');
const GGUF = 'application/vnd.ollama.image.model';

/**
 * What Delete does depends on who put the model on disk: Corral's downloads and its own Ollama store
 * are deleted (and the page says which files), the operator's files never are (and the page says why).
 */
describe.skipIf(!existsSync(CHROMIUM))('deleting models from the Pull page', () => {
  let t: TestGateway;
  let hub: Hub;
  let scratch: string;
  let readOnlyStore: string;
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  const pulledFile = () => join(t.dir, 'data', 'models', 'hf.co', 'acme', 'tiny-GGUF', 'tiny-Q4_K_M.gguf');

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'corral-delete-'));
    const chat = await readFile(fixtures.models.chat);
    hub = await startHub({ 'acme/tiny-GGUF/tiny-Q4_K_M.gguf': await readFile(fixtures.models.chat2) });
    // An existing Ollama install: read, never written.
    readOnlyStore = join(scratch, 'ollama-models');
    await writeStoreModel(
      readOnlyStore,
      ['registry.ollama.ai', 'library', 'stored', 'latest'],
      [{ mediaType: GGUF, body: chat }],
    );
    t = await startGateway({
      models: { tiny: { path: fixtures.models.chat } },
      ollama_store: readOnlyStore,
      pull: { huggingface_url: hub.url, insecure: true, private_hosts: ['127.0.0.1'] },
    });
    const ollama = new Ollama({ host: t.url });
    await ollama.pull({ model: 'hf.co/acme/tiny-GGUF:Q4_K_M' });
    await ollama.copy({ source: 'hf.co/acme/tiny-GGUF:Q4_K_M', destination: 'pulled-copy' });
    // Corral's own store (data/ollama), and a file the user copies into the models directory.
    await writeStoreModel(
      join(t.dir, 'data', 'ollama'),
      ['registry.ollama.ai', 'library', 'own', 'latest'],
      [{ mediaType: GGUF, body: chat }],
    );
    await copyFile(fixtures.models.chat2, join(t.dir, 'data', 'models', 'mine.gguf'));
    await waitFor(() => ['own', 'mine'].every((n) => t.gw.catalog.resolve(n) !== undefined), 15_000);

    await ensureUser(t, 'admin', 'admin');
    context = await launchChromium(await mkdtemp(join(scratch, 'profile-')), {
      viewport: { width: 1200, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.goto(`${t.url}/admin/login`);
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${t.url}/admin`), page.click('form[action="/admin/login"] button')]);
  });

  afterAll(async () => {
    await context?.close();
    await t?.close();
    hub?.server.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const row = (name: string) => page.locator(`tr[data-model="${name}"]`);
  const keepReason = (name: string) => row(name).locator('[data-testid="keep-reason"]').textContent();

  it("says why the operator's models are never deleted, and offers no button for them", async () => {
    await page.goto(`${t.url}/admin/pull`);
    expect(await keepReason('tiny:latest')).toMatch(/^Not deleted: from the config file: remove its entry there/);
    expect(await keepReason('mine:latest')).toMatch(/^Not deleted: a file in your models directory \(.*mine\.gguf\)/);
    expect(await keepReason('stored:latest')).toContain(
      `in the Ollama store at ${readOnlyStore}, which Corral only reads (ollama_store_writable: true`,
    );
    for (const name of ['tiny:latest', 'mine:latest', 'stored:latest'])
      expect(await row(name).locator('button[data-delete]').count(), name).toBe(0);
  });

  it('deletes a copy by name only while its file is still used, then the pulled model and its file', async () => {
    await page.goto(`${t.url}/admin/pull`);
    const status = page.locator('[data-delete-status]');
    await row('pulled-copy:latest').locator('button[data-delete]').click();
    await expect.poll(() => status.textContent()).toMatch(/^Deleted pulled-copy:latest: removes the name only/);
    expect(dialogs.at(-1)).toBe(
      'Delete pulled-copy:latest? This removes the name only: its file is still used by another model.',
    );
    expect(await row('pulled-copy:latest').count()).toBe(0);
    expect(existsSync(pulledFile())).toBe(true);

    await page.reload();
    const pulled = row('hf.co/acme/tiny-gguf:q4_k_m');
    expect(await pulled.locator('button[data-delete]').getAttribute('data-delete-summary')).toBe(
      'removes tiny-Q4_K_M.gguf from disk',
    );
    await pulled.locator('button[data-delete]').click();
    await expect
      .poll(() => status.textContent())
      .toBe('Deleted hf.co/acme/tiny-gguf:q4_k_m: removes tiny-Q4_K_M.gguf from disk.');
    expect(existsSync(pulledFile())).toBe(false);
    expect(t.gw.catalog.resolve('hf.co/acme/tiny-GGUF:Q4_K_M')).toBeUndefined();
  });

  it("deletes a model from Corral's own Ollama store, manifest and unused blobs", async () => {
    await page.goto(`${t.url}/admin/pull`);
    const manifest = join(t.dir, 'data', 'ollama', 'manifests', 'registry.ollama.ai', 'library', 'own', 'latest');
    expect(existsSync(manifest)).toBe(true);
    const button = row('own:latest').locator('button[data-delete]');
    expect(await button.getAttribute('data-delete-summary')).toMatch(
      /^removes its manifest from .*data\/ollama and the blobs no other model uses$/,
    );
    await button.click();
    await expect.poll(() => page.locator('[data-delete-status]').textContent()).toMatch(/^Deleted own:latest/);
    expect(existsSync(manifest)).toBe(false);
  });

  it("never deletes the operator's files through the API either", async () => {
    const res = await fetch(`${t.url}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: 'mine' }) });
    expect(res.status).toBe(200);
    expect(existsSync(join(t.dir, 'data', 'models', 'mine.gguf'))).toBe(true);
    const stored = await fetch(`${t.url}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: 'stored' }) });
    expect(stored.status).toBe(403);
  });
});
