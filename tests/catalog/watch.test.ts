import { copyFile, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loginAs, waitFor } from '../admin/helpers.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

const fixtures = inject('fixtures');
let t: TestGateway;
const logLines: string[] = [];

beforeAll(async () => {
  // `clash` names a file that is not there yet; copying it in later makes the entry valid.
  t = await startGateway(
    { models: { 'my-model': { path: '../data/models/clash.gguf' } } },
    { logger: { level: 'warn', stream: { write: (line: string) => void logLines.push(line) } } },
  );
});
afterAll(async () => t?.close());

const modelsDir = () => join(t.dir, 'data', 'models');
const listed = async (): Promise<string[]> => {
  const res = await fetch(`${t.url}/api/tags`);
  return ((await res.json()) as { models: { name: string }[] }).models.map((m) => m.name);
};

describe('models directory watch', () => {
  it('lists a GGUF copied in while Corral runs, serves it, and drops it when the file goes', async () => {
    expect(await listed()).not.toContain('newcomer:latest');
    await copyFile(fixtures.models.chat2, join(modelsDir(), 'newcomer.gguf'));
    await waitFor(async () => (await listed()).includes('newcomer:latest'), 15_000);
    const res = await post(`${t.url}/api/generate`, {
      model: 'newcomer',
      prompt: 'hi',
      stream: false,
      options: { num_predict: 2 },
    });
    expect(res.status).toBe(200);
    await rm(join(modelsDir(), 'newcomer.gguf'));
    await waitFor(async () => !(await listed()).includes('newcomer:latest'), 15_000);
  });

  it('does not announce a file still being copied, and lists it once complete', async () => {
    const bytes = await readFile(fixtures.models.chat);
    const file = await open(join(modelsDir(), 'halfway.gguf'), 'w');
    try {
      await file.write(bytes, 0, Math.floor(bytes.length / 2));
      await file.sync();
      // Any refresh that lists the sentinel has scanned the directory with the half-written file in it.
      await copyFile(fixtures.models.chat, join(modelsDir(), 'sentinel.gguf'));
      await waitFor(async () => (await listed()).includes('sentinel:latest'), 15_000);
      expect(await listed()).not.toContain('halfway:latest');
      expect(t.gw.catalog.warnings.join('\n')).toMatch(/halfway\.gguf: shorter than its header says/);
      await file.write(bytes, Math.floor(bytes.length / 2));
    } finally {
      await file.close();
    }
    await waitFor(async () => (await listed()).includes('halfway:latest'), 15_000);
    expect(t.gw.catalog.warnings.join('\n')).not.toMatch(/halfway/);
  });

  it('says in the log and on the dashboard which name wins a config entry / file clash', async () => {
    expect(await listed()).not.toContain('my-model:latest');
    await copyFile(fixtures.models.chat, join(modelsDir(), 'clash.gguf'));
    await waitFor(async () => (await listed()).includes('my-model:latest'), 15_000);
    expect(await listed()).not.toContain('clash:latest');
    const note =
      /clash\.gguf is listed as \\?"my-model:latest\\?" \(models\.my-model in the config\), not as \\?"clash:latest\\?"/;
    await waitFor(() => logLines.some((l) => note.test(l)), 5_000);
    const admin = await loginAs(t, 'admin');
    const page = await t.gw.app.inject({ method: 'GET', url: '/admin', headers: { cookie: admin.cookie } });
    expect(page.body).toMatch(/data-testid="catalog-notes"/);
    expect(page.body).toMatch(
      /clash\.gguf is listed as &quot;my-model:latest&quot; \(models\.my-model in the config\)/,
    );
  });
});
