import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { defaultConfig } from '../../src/config/load.js';
import { offloadDevices, parseDeviceList } from '../../src/runner/devices.js';
import { schedulerPolicy } from '../../src/scheduler/plans.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { pidOf, running } from './helpers.js';

const fixtures = inject('fixtures');
let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const gen = (tg: TestGateway, model: string) =>
  post(`${tg.url}/api/generate`, { model, prompt: 'x', stream: false, options: { num_predict: 1 } });
const pair = { a: { path: fixtures.models.chat }, b: { path: fixtures.models.chat2 } };

/** Records, in order, b's runner starting and a's runner exiting. */
function watchOrder(tg: TestGateway): string[] {
  const order: string[] = [];
  const a = tg.gw.scheduler.loaded().find((l) => l.name === 'a:latest')!.runner;
  a.once('exit', () => order.push('a exited'));
  const onChange = (): void => {
    if (!tg.gw.scheduler.loaded().some((l) => l.name === 'b:latest' && l.state === 'starting')) return;
    order.push('b starting');
    tg.gw.scheduler.off('changed', onChange);
  };
  tg.gw.scheduler.on('changed', onChange);
  return order;
}

/** A stand-in llama-server whose `--list-devices` prints `listing`. */
async function standIn(dir: string, name: string, listing: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `#!/bin/sh\nprintf '%s' '${listing}'\n`);
  await chmod(file, 0o755);
  return file;
}

describe('llama-server devices', () => {
  it('the provisioned llama-server answers --list-devices in a form that is understood', async () => {
    expect(Array.isArray(await offloadDevices(fixtures.llamaServer))).toBe(true);
  });

  it('overlap_eviction auto: on with a CPU-only llama-server, off with one that lists a GPU', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'corral-devices-'));
    try {
      const cpu = await standIn(dir, 'cpu', 'Available devices:\n  (none)\n');
      const gpu = await standIn(dir, 'gpu', 'Available devices:\n  CUDA0: NVIDIA A100 (81000 MiB, 80000 MiB free)\n');
      const config = defaultConfig();
      const catalog = new Catalog({ config, baseDir: dir, cwd: dir });
      const auto = async (bin: string) =>
        schedulerPolicy(config, catalog, { vramBytes: 0, cpuOnly: (await offloadDevices(bin))?.length === 0 })
          .overlapEviction;
      expect(config.scheduler.overlap_eviction).toBe('auto');
      expect(await auto(cpu)).toBe(true);
      expect(await auto(gpu)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads GPU devices, and gives no answer for output it does not recognise', () => {
    const cuda =
      'Available devices:\n  CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23512 MiB free)\n  CUDA1: NVIDIA A100 (81000 MiB, 80000 MiB free)\n';
    expect(parseDeviceList(cuda)).toEqual([
      'CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23512 MiB free)',
      'CUDA1: NVIDIA A100 (81000 MiB, 80000 MiB free)',
    ]);
    expect(parseDeviceList('Available devices:\n  (none)\n')).toEqual([]);
    expect(parseDeviceList('error: unknown argument: --list-devices\n')).toBeUndefined();
  });
});

describe('eviction overlapping the next start', () => {
  it('overlap on (auto, with a CPU-only llama-server): the next model answers while the evicted child is still exiting, and shutdown waits for it', async () => {
    // Set explicitly: auto's choice depends on the machine's devices (tested above with stand-ins).
    t = await startGateway({
      llama_server: { stop_timeout: '1s' },
      scheduler: { groups: { pair: ['a', 'b'] }, overlap_eviction: true },
      models: pair,
    });
    expect((await gen(t, 'a')).status).toBe(200);
    const aPid = pidOf(t, 'a:latest')!;
    const order = watchOrder(t);
    // Stopped, a cannot act on the eviction's SIGTERM: it stays alive until the SIGKILL 1 s later.
    process.kill(aPid, 'SIGSTOP');
    const unloaded = once(t.gw.scheduler, 'unloaded');
    expect((await gen(t, 'b')).status).toBe(200);
    expect(await unloaded).toEqual(['a:latest', 'evicted for "b:latest"']);
    expect(await running(aPid)).toBe(true);
    expect(order).toEqual(['b starting']);
    expect(t.gw.scheduler.loaded().map((l) => l.name)).toEqual(['b:latest']);
    const closing = t.close();
    t = undefined;
    await closing;
    expect(order).toEqual(['b starting', 'a exited']);
    expect(await running(aPid)).toBe(false);
  });

  it('overlap_eviction false: the next model starts only once the evicted child has exited', async () => {
    t = await startGateway({ scheduler: { groups: { pair: ['a', 'b'] }, overlap_eviction: false }, models: pair });
    expect((await gen(t, 'a')).status).toBe(200);
    const order = watchOrder(t);
    expect((await gen(t, 'b')).status).toBe(200);
    expect(order).toEqual(['a exited', 'b starting']);
  });
});
