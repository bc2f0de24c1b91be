import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama, type ProgressResponse } from 'ollama';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { readGguf } from '../../src/catalog/gguf.js';
import { createGateway } from '../../src/gateway.js';
import { freePort } from '../../src/runner/free-port.js';
import { processAlive } from '../../src/runner/pid-registry.js';
import { CLI, builtCli } from '../helpers/cli.js';
import { ndjson, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { sha } from '../helpers/registry.js';

const fixtures = inject('fixtures');

const upload = (base: string, d: string, body: Buffer) =>
  fetch(`${base}/api/blobs/${d}`, { method: 'POST', body, duplex: 'half' } as RequestInit);
const blobsOf = (t: TestGateway) => readdir(join(t.dir, 'data', 'ollama', 'blobs'));
/** Only finished blobs: no scratch file of a quantize may be left. */
const BLOB = /^sha256-[0-9a-f]{64}$/;

async function progressOf(stream: AsyncIterable<ProgressResponse>): Promise<ProgressResponse[]> {
  const out: ProgressResponse[] = [];
  for await (const p of stream) out.push(p);
  return out;
}

describe('quantize with the real llama-quantize', () => {
  let t: TestGateway;
  let ollama: Ollama;
  let gguf: Buffer;
  let digest: string;

  beforeAll(async () => {
    gguf = await readFile(fixtures.models.chat);
    digest = sha(gguf);
    t = await startGateway({
      models: {
        tiny: { path: fixtures.models.chat, system: 'Base system.', options: { num_predict: 3 } },
        broken: { path: fixtures.models.broken },
      },
    });
    ollama = new Ollama({ host: t.url });
  });
  afterAll(async () => t?.close());

  it('an uploaded F32 GGUF becomes Q8_0 through the official client, with Ollama’s progress, and answers', async () => {
    expect((await upload(t.url, digest, gguf)).status).toBe(201);
    // ollama-js 0.6 sends `files` as given, though its types do not list it yet.
    const request = { model: 'tiny-q8', files: { 'tiny.gguf': digest }, quantize: 'q8_0', stream: true as const };
    const progress = await progressOf(await ollama.create(request));
    const quantizing = progress.filter((p) => p.status === 'quantizing F32 model to Q8_0');
    expect(quantizing.length).toBeGreaterThan(1);
    expect(quantizing.every((p) => p.total === gguf.length && p.digest === '0000000000000000000')).toBe(true);
    expect(quantizing.at(-1)!.completed).toBe(gguf.length);
    const statuses = progress.map((p) => p.status);
    expect(statuses.indexOf('verifying conversion')).toBeGreaterThan(statuses.indexOf(quantizing[0]!.status));
    const created = statuses.find((s) => s.startsWith('creating new layer sha256:'));
    expect(statuses.slice(-2)).toEqual(['writing manifest', 'success']);

    const layer = created!.slice('creating new layer '.length);
    const blob = join(t.dir, 'data', 'ollama', 'blobs', layer.replace(':', '-'));
    const header = await readGguf(blob);
    expect(header.quantization).toBe('Q8_0');
    expect((await readFile(blob)).length).toBeLessThan(gguf.length / 2);
    const listed = (await ollama.list()).models.find((m) => m.name === 'tiny-q8:latest');
    expect(listed?.details.quantization_level).toBe('Q8_0');
    const res = await ollama.chat({
      model: 'tiny-q8',
      messages: [{ role: 'user', content: 'hi' }],
      options: { num_predict: 4 },
    });
    expect(res.eval_count).toBe(4);
    expect((await blobsOf(t)).every((f) => BLOB.test(f))).toBe(true);
  });

  it('a configured model becomes an F16 store model with its settings, and that one becomes Q4_K_M', async () => {
    const half = await progressOf(
      await ollama.create({ model: 'tiny-f16', from: 'tiny', quantize: 'F16', stream: true }),
    );
    expect(half.map((p) => p.status)).toContain('quantizing F32 model to F16');
    const show = await ollama.show({ model: 'tiny-f16' });
    expect(show.system).toBe('Base system.');
    expect(show.parameters).toMatch(/num_predict\s+3/);
    expect(show.details.quantization_level).toBe('F16');

    const small = await progressOf(
      await ollama.create({ model: 'tiny-q4', from: 'tiny-f16', quantize: 'q4_k_m', stream: true }),
    );
    expect(small.map((p) => p.status)).toContain('quantizing F16 model to Q4_K_M');
    const tags = await ollama.list();
    expect(tags.models.find((m) => m.name === 'tiny-q4:latest')?.details.quantization_level).toBe('Q4_K_M');
    expect((await ollama.show({ model: 'tiny-q4' })).system).toBe('Base system.');
    expect((await ollama.generate({ model: 'tiny-q4', prompt: 'x' })).eval_count).toBe(3);
  });

  it('asking for the type the model has already quantizes nothing', async () => {
    const progress = await progressOf(
      await ollama.create({ model: 'same', from: 'tiny-f16', quantize: 'f16', stream: true }),
    );
    expect(progress.some((p) => p.status.startsWith('quantizing'))).toBe(false);
    expect(progress.at(-1)!.status).toBe('success');
  });

  it('a type it cannot produce, or a source quantized already, is a 400 in Ollama’s words', async () => {
    const unknown = await post(`${t.url}/api/create`, { model: 'x', from: 'tiny', quantize: 'q4_k_xl' });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: string }).error).toBe(
      'unsupported quantization type Q4_K_XL - supported types are F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, ' +
        'Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_L, Q3_K_M, Q3_K_S, Q2_K',
    );
    await expect(ollama.create({ model: 'x', from: 'tiny-q8', quantize: 'q4_K_M' })).rejects.toMatchObject({
      status_code: 400,
      error: 'quantization is only supported for F16, BF16 and F32 models',
    });
    const uploaded = await post(`${t.url}/api/create`, {
      model: 'x',
      files: { 'tiny.gguf': digest },
      quantization: 'IQ2_XXS',
    });
    expect(uploaded.status).toBe(400);
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('x:latest');
  });

  it('llama-quantize failing ends the stream with its reason and leaves nothing', async () => {
    const before = await blobsOf(t);
    const lines = await ndjson(await post(`${t.url}/api/create`, { model: 'z', from: 'broken', quantize: 'q8_0' }));
    expect(lines[0]).toMatchObject({ status: 'quantizing F32 model to Q8_0', completed: 0 });
    expect(lines.at(-1)).toEqual({
      error:
        "llama-quantize failed: tensor 'output.weight' data is not within the file bounds, model is corrupted or incomplete",
    });
    expect(await blobsOf(t)).toEqual(before);
  });

  it('507 when the disk cannot hold the result and keep disk_reserve, read at each request', async () => {
    const config = await readFile(t.configFile, 'utf8');
    await writeFile(t.configFile, `${config}disk_reserve: 1000TB\n`);
    expect((await t.gw.reload()).ok).toBe(true);
    const res = await post(`${t.url}/api/create`, { model: 'y', from: 'tiny', quantize: 'q8_0' });
    expect(res.status).toBe(507);
    expect(((await res.json()) as { error: string }).error).toMatch(/^quantize: not enough disk space/);
    await writeFile(t.configFile, config);
    expect((await t.gw.reload()).ok).toBe(true);
  });
});

/**
 * A directory holding the suite's llama-server and a llama-quantize that starts as the real one does
 * (output file created, first tensor reported) and then hangs, as a long quantize of a real model
 * would: the moment "mid-quantize" lasts as long as the test needs. It records its pid beside itself.
 */
async function hangingQuantize(root: string): Promise<{ bin: string; pid: () => Promise<number> }> {
  const bin = join(root, 'bin');
  await mkdir(bin, { recursive: true });
  await symlink(fixtures.llamaServer, join(bin, 'llama-server'));
  const script = [
    '#!/bin/sh',
    `echo $$ > "${join(bin, 'quantize.pid')}"`,
    'printf "GGUF partial output" > "$2"',
    'echo "[   1/  21]                output.weight - [    64,   300,     1,     1], type =    f32, converting"',
    'exec sleep 600',
  ].join('\n');
  await writeFile(join(bin, 'llama-quantize'), `${script}\n`);
  await chmod(join(bin, 'llama-quantize'), 0o755);
  return { bin, pid: async () => Number(await readFile(join(bin, 'quantize.pid'), 'utf8')) };
}

/** Reads NDJSON progress until llama-quantize has reported a tensor; returns what was read. */
async function untilQuantizing(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let text = '';
  const started = () =>
    text
      .split('\n')
      .some((l) => l.startsWith('{') && l.endsWith('}') && (JSON.parse(l) as { completed?: number }).completed! > 0);
  while (!started()) {
    const r = await reader.read();
    if (r.done) throw new Error(`the stream ended before quantizing started: ${text}`);
    text += new TextDecoder().decode(r.value);
  }
  return text;
}

const scratchFiles = async (blobs: string) =>
  (await readdir(blobs).catch(() => [] as string[])).filter((f) => f.startsWith('quantize-'));

describe('a quantize that is cut short leaves nothing behind', () => {
  let t: TestGateway;
  let tool: Awaited<ReturnType<typeof hangingQuantize>>;
  let blobs: string;
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'corral-quantize-'));
    tool = await hangingQuantize(root);
    t = await startGateway({
      llama_server: { binary: join(tool.bin, 'llama-server') },
      models: { tiny: { path: fixtures.models.chat } },
    });
    blobs = join(t.dir, 'data', 'ollama', 'blobs');
  });
  afterAll(async () => {
    await t?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a client that disconnects mid-quantize: the child is killed and its partial output removed', async () => {
    const ollama = new Ollama({ host: t.url });
    const stream = await ollama.create({ model: 'gone', from: 'tiny', quantize: 'q8_0', stream: true });
    // Read by hand: leaving a for-await loop would end the iteration, not just pause it.
    const lines = stream[Symbol.asyncIterator]();
    for (let p = await lines.next(); !((p.value?.completed ?? 0) > 0); p = await lines.next())
      expect(p.done).toBe(false);
    const pid = await tool.pid();
    expect(processAlive(pid)).toBe(true);
    expect(await scratchFiles(blobs)).toHaveLength(1);
    // The gateway goes on answering while a quantize runs.
    expect((await ollama.list()).models.map((m) => m.name)).toContain('tiny:latest');
    stream.abort();
    await vi.waitFor(
      async () => {
        expect(processAlive(pid)).toBe(false);
        expect(await scratchFiles(blobs)).toEqual([]);
      },
      { timeout: 10_000, interval: 50 },
    );
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('gone:latest');
    expect(await readdir(blobs)).toEqual([]);
  });

  it('Corral stopping cancels it: the stream ends with an error line, no child, no partial file', async () => {
    const res = await post(`${t.url}/api/create`, { model: 'stopped', from: 'tiny', quantize: 'q8_0' });
    const reader = res.body!.getReader();
    let text = await untilQuantizing(reader);
    const pid = await tool.pid();
    expect(processAlive(pid)).toBe(true);
    const closing = t.gw.close();
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    await closing;
    const last = JSON.parse(text.trim().split('\n').at(-1)!) as { error?: string };
    expect(last.error).toBe('quantizing was cancelled: Corral is shutting down');
    expect(processAlive(pid)).toBe(false);
    expect(await scratchFiles(blobs)).toEqual([]);
  });
});

describe('Corral killed mid-quantize', () => {
  // The test runs the real CLI, so it needs the compiled output (a build, if any, gets the hook's time).
  beforeAll(async () => void (await builtCli()));

  it('takes llama-quantize with it; the next start removes the partial output', async () => {
    const root = await mkdtemp(join(tmpdir(), 'corral-quantize-kill-'));
    const tool = await hangingQuantize(root);
    const configFile = join(root, 'corral.yaml');
    const config = {
      llama_server: { binary: join(tool.bin, 'llama-server'), stop_timeout: '5s' },
      ollama_store: 'off',
      models: { tiny: { path: fixtures.models.chat } },
    };
    await writeFile(configFile, stringify(config));
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile, '--port', String(port)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr.setEncoding('utf8').on('data', (c: string) => {
          out += c;
          if (out.includes('Corral is listening')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
      const res = await post(`http://127.0.0.1:${port}/api/create`, { model: 'k', from: 'tiny', quantize: 'q8_0' });
      await untilQuantizing(res.body!.getReader());
      const pid = await tool.pid();
      const blobs = join(root, 'data', 'ollama', 'blobs');
      const [scratch] = await scratchFiles(blobs);
      expect(scratch).toMatch(new RegExp(`^quantize-${hostname()}-${child.pid}-[0-9a-f]{12}\\.tmp$`));
      child.kill('SIGKILL');
      // The kernel's parent-death signal: nobody is left to stop it otherwise.
      await vi.waitFor(() => expect(processAlive(pid)).toBe(false), { timeout: 10_000, interval: 50 });
      expect(await scratchFiles(blobs)).toEqual([scratch]);

      // Not this host's, or of a process that still runs (pid 1 always does): another Corral's, left alone.
      const others = [`quantize-${hostname()}-1-0123456789ab.tmp`, `quantize-elsewhere-${child.pid}-0123456789ab.tmp`];
      for (const name of others) await writeFile(join(blobs, name), 'another run');
      const again = await createGateway({ configFile, cwd: root });
      try {
        expect((await scratchFiles(blobs)).sort()).toEqual(others.sort());
      } finally {
        await again.close();
      }
    } finally {
      child.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('without the official client', () => {
  it('stream: false answers once, after the quantize', async () => {
    const t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    try {
      const res = await post(`${t.url}/api/create`, { model: 'q', from: 'tiny', quantize: 'Q8_0', stream: false });
      expect(res.status).toBe(200);
      expect(await ndjson(res)).toEqual([{ status: 'success' }]);
      expect(t.gw.catalog.resolve('q')?.gguf.quantization).toBe('Q8_0');
    } finally {
      await t.close();
    }
  });
});
