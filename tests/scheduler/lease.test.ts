import { describe, expect, it } from 'vitest';
import { ModelLoadFailed, QueueFull, UpstreamUnreachable } from '../../src/errors.js';
import type { LlamaClient } from '../../src/llama/client.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import type { SchedulableModel } from '../../src/scheduler/types.js';
import { FakeLlamaClient, FakeRunner, type FakeRunnerOptions } from '../helpers/fake-llama.js';

/** Scheduler unit tests: scripted runners, no process, no HTTP. */
function setup(opts: FakeRunnerOptions = {}) {
  const runners: FakeRunner[] = [];
  const scheduler = new Scheduler({
    makeRunner: (m) => {
      const r = new FakeRunner(m.name, () => new FakeLlamaClient(), opts);
      runners.push(r);
      return r;
    },
  });
  return { scheduler, runners };
}

const model = (over: Partial<SchedulableModel> = {}): SchedulableModel => ({
  name: 'm:latest',
  path: '/m.gguf',
  parallel: 1,
  queueSize: 4,
  ctxSize: 512,
  keepAliveMs: 60_000,
  memoryBytes: 1,
  pinned: false,
  launch: { name: 'm:latest', path: '/m.gguf', args: [], embedding: false },
  ...over,
});

const unreachable = (delivered: boolean) => new UpstreamUnreachable('llama-server is unreachable: reset', delivered);

describe('withLease', () => {
  it("hands out the child's client and frees the slot when fn settles, resolved or not", async () => {
    const { scheduler, runners } = setup();
    const seen: LlamaClient[] = [];
    expect(
      await scheduler.withLease(model(), {}, async (client) => {
        seen.push(client);
        return 'ok';
      }),
    ).toBe('ok');
    expect(seen).toEqual([runners[0]!.client]);
    await expect(scheduler.withLease(model(), {}, async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(scheduler.loaded()[0]).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('a request that never reached a child that died runs once more on a fresh child', async () => {
    const { scheduler, runners } = setup();
    const retried: string[] = [];
    scheduler.on('retried', (name) => retried.push(name));
    let calls = 0;
    const value = await scheduler.withLease(model(), {}, async (client) => {
      calls++;
      if (calls === 1) {
        runners[0]!.crash();
        throw unreachable(false);
      }
      return client;
    });
    expect(calls).toBe(2);
    expect(runners).toHaveLength(2);
    expect(value).toBe(runners[1]!.client);
    expect(retried).toEqual(['m:latest']);
  });

  it('only once, and never a request the child may have read (it may be what crashed it)', async () => {
    const { scheduler, runners } = setup();
    let calls = 0;
    const again = scheduler.withLease(model(), {}, async () => {
      calls++;
      runners.at(-1)!.crash();
      throw unreachable(false);
    });
    await expect(again).rejects.toBeInstanceOf(UpstreamUnreachable);
    expect(calls).toBe(2);

    calls = 0;
    const delivered = scheduler.withLease(model(), {}, async () => {
      calls++;
      runners.at(-1)!.crash();
      throw unreachable(true);
    });
    await expect(delivered).rejects.toMatchObject({ delivered: true, status: 502 });
    expect(calls).toBe(1);
  });

  it('a client that left is not retried', async () => {
    const { scheduler, runners } = setup();
    const controller = new AbortController();
    let calls = 0;
    const run = scheduler.withLease(model(), { signal: controller.signal }, async () => {
      calls++;
      controller.abort();
      runners[0]!.crash();
      throw unreachable(false);
    });
    await expect(run).rejects.toBeInstanceOf(UpstreamUnreachable);
    expect(calls).toBe(1);
  });

  it('a request queued when the child crashes is served by a fresh child; a full queue is refused at once', async () => {
    const { scheduler, runners } = setup();
    const m = model({ queueSize: 2 });
    // parallel 1, queue 2: one in llama-server's slot, one more handed to it, one waiting here.
    const held = [await scheduler.acquire(m), await scheduler.acquire(m)];
    const queued = scheduler.withLease(m, {}, async (client) => client);
    await expect(scheduler.acquire(m)).rejects.toBeInstanceOf(QueueFull);
    runners[0]!.crash();
    expect(await queued).toBe(runners[1]!.client);
    for (const lease of held) lease.release();
  });

  it('a load that fails reaches the request with its reason', async () => {
    const { scheduler } = setup({ failWith: 'unknown model architecture' });
    await expect(scheduler.withLease(model(), {}, async () => 'never')).rejects.toThrow(ModelLoadFailed);
    await expect(scheduler.withLease(model(), {}, async () => 'never')).rejects.toThrow(/unknown model architecture/);
  });
});
