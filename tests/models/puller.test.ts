import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Manifest } from '../../src/models/manifest.js';
import { Puller, type PullProgress } from '../../src/models/pull.js';
import { parseModelfile } from '../../src/models/modelfile.js';
import { pickQuant } from '../../src/models/hf-resolver.js';
import { renderGoTemplate } from '../../src/api/ollama/go-template.js';
import { startHub, type Hub } from '../helpers/hub.js';

let hub: Hub;
let dir: string;
const model = Buffer.alloc(300_000, 7);

beforeAll(async () => {
  hub = await startHub({ 'acme/a-GGUF/a-Q4_K_M.gguf': model, 'acme/b-GGUF/b-Q4_K_M.gguf': model });
  dir = await mkdtemp(join(tmpdir(), 'corral-puller-'));
});
afterAll(async () => {
  hub?.server.close();
  await rm(dir, { recursive: true, force: true });
});

function puller(opts: { attempts?: number; reserveBytes?: () => number } = {}): Puller {
  return new Puller({
    modelsDir: () => join(dir, 'models'),
    manifest: () => new Manifest(join(dir, 'models.json')),
    huggingfaceUrl: () => hub.url,
    // The stand-in hub is plain http on loopback: both must be allowed explicitly.
    policy: () => ({ insecure: true, privateHosts: ['127.0.0.1'] }),
    refresh: async () => undefined,
    ...opts,
  });
}

async function run(p: Puller, ref: string): Promise<PullProgress[]> {
  const job = p.pull(ref);
  const seen: PullProgress[] = [];
  const off = job.subscribe((e) => seen.push(e));
  try {
    await job.done;
  } finally {
    off();
  }
  return seen;
}

describe('Puller', () => {
  it('keeps the .partial after a failed pull and resumes it with Range on the next one', async () => {
    hub.cutOnce.set('acme/a-GGUF/a-Q4_K_M.gguf', 120_000);
    const p = puller({ attempts: 1 });
    await expect(run(p, 'hf.co/acme/a-GGUF:Q4_K_M')).rejects.toThrow(/interrupted|ended after/);
    const partial = join(dir, 'models', 'hf.co', 'acme', 'a-GGUF', 'a-Q4_K_M.gguf.partial');
    expect((await stat(partial)).size).toBe(120_000);
    const seen = await run(p, 'hf.co/acme/a-GGUF:Q4_K_M');
    expect(seen.at(-1)).toEqual({ status: 'success' });
    expect(seen.find((e) => e.completed !== undefined)?.completed).toBe(120_000);
    expect(hub.requests.filter((r) => r.path.includes('a-Q4_K_M')).map((r) => r.range)).toEqual([
      undefined,
      'bytes=120000-',
    ]);
    await expect(stat(partial)).rejects.toThrow();
  });

  it('checks free disk space before downloading', async () => {
    await expect(
      run(puller({ reserveBytes: () => Number.MAX_SAFE_INTEGER }), 'hf.co/acme/b-GGUF:Q4_K_M'),
    ).rejects.toMatchObject({ status: 507, message: expect.stringContaining('disk space') });
    expect(await readdir(join(dir, 'models', 'hf.co', 'acme', 'b-GGUF')).catch(() => [])).toEqual([]);
  });
});

describe('helpers', () => {
  it('picks the file for a quant tag', () => {
    const files = ['m-IQ4_K_M.gguf', 'm-Q4_K_M.gguf', 'm.Q8_0.gguf', 'mmproj-m-f16.gguf'];
    expect(pickQuant(files, 'Q4_K_M')).toBe('m-Q4_K_M.gguf');
    expect(pickQuant(files, 'q8_0')).toBe('m.Q8_0.gguf');
    expect(pickQuant(files, undefined)).toBe('m-Q4_K_M.gguf');
    expect(pickQuant(files, 'Q2_K')).toBeUndefined();
  });

  it('parses the Modelfile subset', () => {
    expect(
      parseModelfile(
        '# c\nFROM base\nPARAMETER temperature 0.5\nPARAMETER stop "a"\nPARAMETER stop b\nSYSTEM """x\ny"""\nTEMPLATE "{{ .Prompt }}"',
      ),
    ).toEqual({
      from: 'base',
      system: 'x\ny',
      template: '{{ .Prompt }}',
      parameters: { temperature: 0.5, stop: ['a', 'b'] },
    });
  });

  it('renders the Go template subset up to .Response', () => {
    const tpl = '{{- if .System }}S:{{ .System }}\n{{ end -}}\nU:{{ .Prompt }}\nA:{{ .Response }}<end>';
    expect(renderGoTemplate(tpl, { System: 'sys', Prompt: 'p', Response: '' })).toBe('S:sys\nU:p\nA:');
    expect(renderGoTemplate(tpl, { System: '', Prompt: 'p', Response: '' })).toBe('U:p\nA:');
  });
});
