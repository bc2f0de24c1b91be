import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerArgs } from '../../src/runner/args.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { inject } from 'vitest';

const model = { name: 'm', path: '/m.gguf', args: [] as string[], embedding: false };
const base = { globalArgs: [] as string[], ctxSize: 512, parallel: 1 };

describe('-ngl in the llama-server command line', () => {
  it('a GPU build offloads models that do not say otherwise', () => {
    const args = runnerArgs(model, { ...base, gpuLayers: 'auto' });
    expect(args.join(' ')).toContain('-ngl auto');
  });

  it('is left out when the model or the global args set it, in any spelling', () => {
    for (const set of [['-ngl', '20'], ['--gpu-layers', '0'], ['--n-gpu-layers=10']]) {
      expect(runnerArgs({ ...model, args: set }, { ...base, gpuLayers: 'auto' })).not.toContain('auto');
      expect(runnerArgs(model, { ...base, globalArgs: set, gpuLayers: 'auto' })).not.toContain('auto');
    }
  });

  it('is not added for a CPU build', () => {
    expect(runnerArgs(model, base).some((a) => a.includes('ngl') || a.includes('gpu-layers'))).toBe(false);
  });

  it("a request's num_gpu comes last, so it wins over the model's own -ngl", () => {
    const args = runnerArgs({ ...model, args: ['-ngl', '20'] }, { ...base, gpuLayers: 'auto', requestGpuLayers: 0 });
    expect(args.slice(-2)).toEqual(['-ngl', '0']);
  });
});

describe("Ollama's num_gpu option (real llama-server)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ models: { tiny: { path: inject('fixtures').models.chat } } });
  });
  afterAll(() => gw.close());

  const generate = (options: Record<string, unknown>) =>
    post(`${gw.url}/api/generate`, {
      model: 'tiny',
      prompt: 'hi',
      stream: false,
      options: { num_predict: 2, ...options },
    });
  const running = async () => {
    const [entry] = gw.gw.scheduler.loaded();
    const argv = (await readFile(`/proc/${entry!.pid}/cmdline`, 'utf8')).split('\0');
    return { pid: entry!.pid, ngl: argv.lastIndexOf('-ngl') === -1 ? undefined : argv[argv.lastIndexOf('-ngl') + 1] };
  };

  it('starts the model with -ngl N, restarts an idle one for another N, and keeps it when unnamed', async () => {
    expect((await generate({ num_gpu: 0 })).status).toBe(200);
    const first = await running();
    expect(first.ngl).toBe('0');
    expect((await generate({ num_gpu: 1 })).status).toBe(200);
    const second = await running();
    expect(second.ngl).toBe('1');
    expect(second.pid).not.toBe(first.pid);
    expect((await generate({})).status).toBe(200);
    expect((await running()).pid).toBe(second.pid);
  });

  it("a num_gpu that is not a number is a 400 in Ollama's words", async () => {
    const res = await generate({ num_gpu: 'all' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid options: "num_gpu" must be a number' });
  });
});
