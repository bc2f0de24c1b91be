import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Ollama, type ProgressResponse } from 'ollama';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createGateway } from '../../src/gateway.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { registryModel, sha, startRegistry, type Registry, type RegistryModel } from '../helpers/registry.js';

const fixtures = inject('fixtures');
const GO_CHATML =
  '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n';
const MODEL = 'application/vnd.ollama.image.model';

let reg: Registry;
let t: TestGateway;
let ollama: Ollama;
let gguf: Buffer;
let other: Buffer;
const models = new Map<string, RegistryModel>();

function model(body: Buffer, extra: { mediaType: string; body: string }[] = []): RegistryModel {
  return registryModel([{ mediaType: MODEL, body }, ...extra], {
    model_format: 'gguf',
    model_family: 'llama',
    model_families: ['llama'],
    model_type: '1M',
    file_type: 'F32',
    architecture: 'amd64',
    os: 'linux',
  });
}

const loopbackAllowed = (url: string) => ({ registry_url: url, insecure: true, private_hosts: ['127.0.0.1'] });

beforeAll(async () => {
  gguf = await readFile(fixtures.models.chat);
  other = await readFile(fixtures.models.chat2);
  const dir = join(fixtures.models.chat, '..');
  await writeTinyModel(join(dir, 'registry-resume.gguf'), { name: 'resume', seed: 21 });
  await writeTinyModel(join(dir, 'registry-bad.gguf'), { name: 'bad', seed: 22 });
  models.set(
    'library/tiny:1b',
    model(gguf, [
      { mediaType: 'application/vnd.ollama.image.template', body: GO_CHATML },
      { mediaType: 'application/vnd.ollama.image.params', body: '{"stop":["<|im_end|>"],"temperature":0.2}' },
      { mediaType: 'application/vnd.ollama.image.system', body: 'You are tiny.' },
      { mediaType: 'application/vnd.ollama.image.license', body: 'MIT, tiny' },
    ]),
  );
  models.set('library/resume:latest', model(await readFile(join(dir, 'registry-resume.gguf'))));
  models.set('library/bad:latest', model(await readFile(join(dir, 'registry-bad.gguf'))));
  models.set('library/twin-a:latest', model(other, [{ mediaType: 'application/vnd.ollama.image.system', body: 'a' }]));
  models.set('library/twin-b:latest', model(other, [{ mediaType: 'application/vnd.ollama.image.system', body: 'b' }]));
  models.set('acme/cut:v2', model(gguf, [{ mediaType: 'application/vnd.ollama.image.system', body: 'cut' }]));
  models.set('library/away:latest', model(Buffer.alloc(200_000, 3), []));
  models.set('library/meta:latest', model(Buffer.from('GGUF metadata'), []));
  reg = await startRegistry(models);
  reg.beforeCut = untilWritten(() => t.dir);
  t = await startGateway({ pull: loopbackAllowed(reg.url) });
  ollama = new Ollama({ host: t.url });
});
afterAll(async () => {
  await t?.close();
  await reg?.close();
});

const blobsDir = (dir: string) => join(dir, 'data', 'ollama', 'blobs');
const partialOf = (dir: string, digest: string) => join(blobsDir(dir), `${digest.replace(':', '-')}.partial`);
/** Holds a cut until the client has written what it was sent, so the resume offset is exact. */
const untilWritten = (dir: () => string) => async (digest: string, sent: number) =>
  vi.waitFor(async () => expect((await stat(partialOf(dir(), digest)).catch(() => ({ size: -1 }))).size).toBe(sent), {
    timeout: 10_000,
    interval: 5,
  });
const cdnGets = (digest: string) => reg.requests.filter((r) => r.server === 'cdn' && r.path.endsWith(digest));
const modelDigest = (name: string) =>
  (JSON.parse(models.get(name)!.manifest.toString()) as { layers: { digest: string }[] }).layers[0]!.digest;

describe('pulling from an Ollama registry', () => {
  it("pulls with the official client, showing Ollama's progress lines, then serves the model", async () => {
    const seen: ProgressResponse[] = [];
    for await (const p of await ollama.pull({ model: 'tiny:1b', stream: true })) seen.push(p);
    const statuses = seen.map((p) => p.status);
    expect(statuses[0]).toBe('pulling manifest');
    expect(statuses.slice(-3)).toEqual(['verifying sha256 digest', 'writing manifest', 'success']);
    const digest = modelDigest('library/tiny:1b');
    const bar = seen.filter((p) => p.digest === digest);
    expect(bar[0]!.status).toBe(`pulling ${digest.slice(7, 19)}`);
    expect(bar.at(-1)).toMatchObject({ total: gguf.length, completed: gguf.length });

    // Ollama's layout, and the manifest exactly as the registry sent it.
    const manifestFile = join(t.dir, 'data', 'ollama', 'manifests', 'registry.ollama.ai', 'library', 'tiny', '1b');
    expect(await readFile(manifestFile)).toEqual(models.get('library/tiny:1b')!.manifest);
    expect((await stat(join(blobsDir(t.dir), digest.replace(':', '-')))).size).toBe(gguf.length);

    const listed = (await ollama.list()).models.find((m) => m.name === 'tiny:1b')!;
    expect(listed.digest).toBe(sha(models.get('library/tiny:1b')!.manifest).slice(7));
    const show = await ollama.show({ model: 'tiny:1b' });
    expect(show.system).toBe('You are tiny.');
    expect(show.license).toBe('MIT, tiny');
    expect(show.parameters).toMatch(/stop\s+"<\|im_end\|>"/);
    const chat = await ollama.chat({
      model: 'tiny:1b',
      messages: [{ role: 'user', content: 'hello' }],
      options: { num_predict: 3 },
    });
    expect(chat.eval_count).toBe(3);
  });

  it('follows the blob redirect and resumes a connection dropped mid-blob with Range', async () => {
    const digest = modelDigest('acme/cut:v2');
    const before = reg.requests.length;
    const fetched = cdnGets(digest).length;
    const lines = await ndjson(await post(`${t.url}/api/pull`, { model: 'acme/cut:v2' }));
    expect(lines.at(-1)).toEqual({ status: 'success' });
    // Its GGUF is tiny:1b's, already in the store: only the new layers are fetched.
    expect(cdnGets(digest)).toHaveLength(fetched);
    reg.cutOnce.clear();
    const resumeDigest = modelDigest('library/resume:latest');
    reg.cutOnce.set(resumeDigest, [40_000]);
    const res = await ndjson(await post(`${t.url}/api/pull`, { model: 'resume' }));
    expect(res.at(-1)).toEqual({ status: 'success' });
    expect(cdnGets(resumeDigest).map((r) => r.range)).toEqual([undefined, 'bytes=40000-']);
    const redirects = reg.requests.slice(before).filter((r) => r.server === 'registry' && r.path.includes('/blobs/'));
    expect(redirects.length).toBeGreaterThan(0);
    const body = await readFile(join(blobsDir(t.dir), resumeDigest.replace(':', '-')));
    expect(sha(body)).toBe(resumeDigest);
  });

  it('an unknown name is a 404 in Ollama’s words', async () => {
    await expect(ollama.pull({ model: 'nope:latest' })).rejects.toMatchObject({
      status_code: 404,
      error: 'pull model manifest: file does not exist',
    });
  });

  it('a blob whose bytes do not match its digest is discarded and the pull fails clearly', async () => {
    const digest = modelDigest('library/bad:latest');
    reg.corrupt.set(digest, Buffer.alloc(models.get('library/bad:latest')!.blobs.get(digest)!.length, 1));
    const lines = await ndjson(await post(`${t.url}/api/pull`, { model: 'bad' }));
    expect(lines.at(-1)!.error).toMatch(/^digest mismatch, file must be downloaded again: want sha256:/);
    const left = await readdir(blobsDir(t.dir));
    expect(left.filter((f) => f.includes(digest.slice(7)))).toEqual([]);
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('bad:latest');
    reg.corrupt.clear();
  });

  it('concurrent pulls that need the same blob share one download', async () => {
    const digest = modelDigest('library/twin-a:latest');
    let open!: () => void;
    reg.gate = new Promise<void>((r) => (open = r));
    const joined: Promise<void>[] = [];
    const pulls = ['twin-a', 'twin-b'].map((name) => {
      let saw!: () => void;
      joined.push(new Promise<void>((r) => (saw = r)));
      return (async () => {
        for await (const p of await ollama.pull({ model: name, stream: true })) if (p.digest === digest) saw();
      })();
    });
    await Promise.all(joined);
    open();
    reg.gate = undefined;
    await Promise.all(pulls);
    expect(cdnGets(digest)).toHaveLength(1);
    const names = (await ollama.list()).models.map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['twin-a:latest', 'twin-b:latest']));
  });

  it('resumes a partial blob across a restart of Corral', async () => {
    const digest = sha(models.get('library/away:latest')!.blobs.get(modelDigest('library/away:latest'))!);
    reg.cutOnce.set(digest, [50_000, 0, 0]);
    const first = await ndjson(await post(`${t.url}/api/pull`, { model: 'away' }));
    expect(String(first.at(-1)!.error)).toMatch(/interrupted|ended before/);
    expect((await stat(partialOf(t.dir, digest))).size).toBe(50_000);
    await t.gw.close();
    const gw = await createGateway({ configFile: t.configFile, cwd: t.dir });
    try {
      const url = await gw.app.listen({ host: '127.0.0.1', port: 0 });
      const again = await ndjson(await post(`${url}/api/pull`, { model: 'away' }));
      expect(again.at(-1)).toEqual({ status: 'success' });
      expect(cdnGets(digest).at(-1)!.range).toBe('bytes=50000-');
    } finally {
      await gw.close();
      t.gw = await createGateway({ configFile: t.configFile, cwd: t.dir });
      t.url = await t.gw.app.listen({ host: '127.0.0.1', port: 0 });
      ollama = new Ollama({ host: t.url });
    }
  });
});

describe('what a pull may reach', () => {
  it('refuses a loopback registry unless its host is allowed, and plain http unless insecure', async () => {
    const strict = await startGateway({ pull: { registry_url: reg.url, insecure: true } });
    const https = await startGateway({ pull: { registry_url: reg.url, private_hosts: ['127.0.0.1'] } });
    try {
      const before = reg.requests.length;
      const res = await post(`${strict.url}/api/pull`, { model: 'tiny:1b' });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toMatch(/127\.0\.0\.1.*loopback.*pull\.private_hosts/);
      const plain = await post(`${https.url}/api/pull`, { model: 'tiny:1b', stream: false });
      expect(plain.status).toBe(403);
      expect(((await plain.json()) as { error: string }).error).toMatch(/only https/);
      expect(reg.requests.length).toBe(before);
      // The request's own "insecure" allows http, as Ollama's does; the address rule still holds.
      const asked = await post(`${https.url}/api/pull`, { model: 'meta', insecure: true, stream: false });
      expect(asked.status).toBe(200);
    } finally {
      await strict.close();
      await https.close();
    }
  });

  it('checks every redirect hop: a blob sent to another loopback name or to a link-local address is refused', async () => {
    const digest = modelDigest('library/bad:latest');
    const cdnPort = new URL(reg.cdnUrl).port;
    for (const [to, why] of [
      [`http://localhost:${cdnPort}/blobs/${digest}`, /refusing to connect to localhost \(.*loopback/],
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254.*link-local/],
      [`ftp://127.0.0.1:${cdnPort}/x`, /only https/],
    ] as const) {
      reg.redirectTo.set(digest, to);
      const before = cdnGets(digest).length;
      const lines = await ndjson(await post(`${t.url}/api/pull`, { model: 'bad' }));
      expect(String(lines.at(-1)!.error)).toMatch(why);
      expect(cdnGets(digest).length).toBe(before);
    }
    reg.redirectTo.clear();
    await rm(join(blobsDir(t.dir), `${digest.replace(':', '-')}.partial`), { force: true });
  });
});
