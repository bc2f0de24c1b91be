import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containedPath } from '../../src/fs/contained.js';
import { resolveUrl } from '../../src/models/hf-resolver.js';
import { parseOllamaName } from '../../src/ollama-store/names.js';
import { OllamaStore } from '../../src/ollama-store/store.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startHub, type Hub } from '../helpers/hub.js';

const ESCAPES = [
  'a/%2E%2E%2F%2E%2E%2Fevil.gguf',
  'a/%252E%252E%252Fevil.gguf',
  'a/..%5C..%5Cevil.gguf',
  'a/%2Fetc%2Fevil.gguf',
  'a/%00evil.gguf',
  'a/C%3A%5Cevil.gguf',
];

describe('names from requests never become paths outside their directory', () => {
  it('URL pulls refuse encoded, double-encoded, backslash and absolute segments', () => {
    for (const path of ESCAPES) expect(() => resolveUrl(`https://example.com/${path}`), path).toThrow(/invalid/);
    expect(resolveUrl('https://example.com/a/b/model.gguf').files[0]!.relPath).toBe('example.com/a/b/model.gguf');
    // A whole `%2e%2e` segment is a `..` to the URL parser itself: it climbs inside the URL, not the disk.
    expect(resolveUrl('https://example.com/a/%2e%2e/%2e%2e/m.gguf').files[0]!.relPath).toBe('example.com/m.gguf');
  });

  it('containedPath resolves the final path and refuses anything outside the root', () => {
    expect(containedPath('/srv/models', 'a', 'b.gguf')).toBe('/srv/models/a/b.gguf');
    for (const parts of [['..', 'x'], ['a/../../x'], ['/etc/passwd'], ['a', '..', '..', 'x'], ['.'], ['a\0b']])
      expect(() => containedPath('/srv/models', ...parts), parts.join('|')).toThrow(/refusing|invalid/);
  });

  it('Ollama names and digests are validated before they name a file', () => {
    for (const bad of ['../x', 'a/../../b', '..:tag', 'x:../../y', 'a/b/c/d', 'x%2F..', 'a\\b', '/abs'])
      expect(parseOllamaName(bad), bad).toBeUndefined();
    const store = new OllamaStore('/srv/ollama', false);
    for (const bad of [
      'sha256:../../etc/passwd',
      `sha256:${'a'.repeat(63)}/`,
      'sha256-..',
      `../sha256-${'a'.repeat(64)}`,
    ])
      expect(() => store.blobFile(bad), bad).toThrow(/invalid digest/);
    expect(store.manifestFile(parseOllamaName('hf.co/u/M:Q4')!)).toBe('/srv/ollama/manifests/hf.co/u/M/Q4');
  });
});

describe('through the API', () => {
  let t: TestGateway;
  let hub: Hub;
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'corral-paths-'));
    await writeTinyModel(join(scratch, 'm.gguf'), { name: 'm', seed: 41 });
    const model = await readFile(join(scratch, 'm.gguf'));
    hub = await startHub({ 'evil.gguf': model, 'files/evil.gguf': model });
    t = await startGateway({ pull: { huggingface_url: hub.url, insecure: true, private_hosts: ['127.0.0.1'] } });
  });
  afterAll(async () => {
    await t?.close();
    hub?.server.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('pulls, creates and copies with escaping names are refused and write nothing', async () => {
    for (const path of ESCAPES) {
      const res = await post(`${t.url}/api/pull`, { model: `${hub.url}/plain/${path}`, stream: false });
      expect(res.status, path).toBe(400);
    }
    for (const model of ['hf.co/../..:Q4_K_M', '../../etc:x', 'a/b/c/d:e']) {
      expect((await post(`${t.url}/api/pull`, { model, stream: false })).status, model).toBe(400);
    }
    const create = await post(`${t.url}/api/create`, {
      model: '../x',
      files: { 'a.gguf': `sha256:${'a'.repeat(64)}` },
    });
    expect(create.status).toBe(400);
    const everywhere = [...(await readdir(t.dir, { recursive: true })), ...(await readdir(join(t.dir, '..')))];
    expect(everywhere.filter((f) => String(f).includes('evil'))).toEqual([]);
    expect(hub.requests.filter((r) => r.path.includes('evil'))).toEqual([]);
  });
});
