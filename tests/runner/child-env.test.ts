import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { childEnvironment } from '../../src/runner/child-env.js';
import { Runner, type RunnerSpec } from '../../src/runner/runner.js';
import { runnerPlumbing, tinySpec } from '../helpers/runner.js';

let runner: Runner | undefined;
const logs = mkdtempSync(join(tmpdir(), 'corral-env-'));
const plumbing = runnerPlumbing();

afterEach(async () => {
  await runner?.stop();
  runner = undefined;
  delete process.env.MALLOC_MMAP_THRESHOLD_;
});
afterAll(() => {
  plumbing.remove();
  rmSync(logs, { recursive: true, force: true });
});

function environOf(pid: number): Record<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
  return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

const spec = (extra: Partial<RunnerSpec> = {}): RunnerSpec => tinySpec(plumbing, join(logs, 'tiny.log'), extra);

describe('llama-server child environment', () => {
  it('inherits the gateway environment except its allocator tuning, plus the model env', async () => {
    process.env.MALLOC_MMAP_THRESHOLD_ = '131072';
    runner = new Runner(spec({ env: { CORRAL_TEST_MODEL_ENV: 'from-model' } }));
    await runner.start();
    const env = environOf(runner.pid!);
    expect(env.MALLOC_MMAP_THRESHOLD_).toBeUndefined();
    expect(env.CORRAL_TEST_MODEL_ENV).toBe('from-model');
    expect(env.PATH).toBe(process.env.PATH);
  });

  it("never passes the gateway's secrets: only what llama-server and GPU runtimes read, and what pass_env names", async () => {
    const gateway = {
      ...process.env,
      CORRAL_ADMIN_PASSWORD: 'hunter2-secret',
      AWS_SECRET_ACCESS_KEY: 'aws-secret',
      LLAMA_API_KEY: 'would-lock-corral-out',
      CUDA_VISIBLE_DEVICES: '1',
      LC_ALL: 'C.UTF-8',
      GGML_SCHED_MAX_COPIES: '2',
      MY_RUNTIME_DIR: '/opt/rt',
      ACME_FLAG: 'on',
    };
    runner = new Runner(spec({ inheritEnv: gateway, passEnv: ['MY_RUNTIME_DIR', 'ACME_*'] }));
    await runner.start();
    const env = environOf(runner.pid!);
    const raw = readFileSync(`/proc/${runner.pid}/environ`, 'latin1');
    expect(raw).not.toContain('hunter2-secret');
    expect(raw).not.toContain('aws-secret');
    expect(env.CORRAL_ADMIN_PASSWORD).toBeUndefined();
    expect(env.LLAMA_API_KEY).toBeUndefined();
    expect(env).toMatchObject({
      CUDA_VISIBLE_DEVICES: '1',
      LC_ALL: 'C.UTF-8',
      GGML_SCHED_MAX_COPIES: '2',
      MY_RUNTIME_DIR: '/opt/rt',
      ACME_FLAG: 'on',
      PATH: process.env.PATH,
    });
  });

  it('the allow-list by itself', () => {
    const env = childEnvironment({ HOME: '/h', LANG: 'C', CORRAL_DB_PASSWORD: 'x', HIP_VISIBLE_DEVICES: '0', X: 'y' });
    expect(env).toEqual({ HOME: '/h', LANG: 'C', HIP_VISIBLE_DEVICES: '0' });
  });
});
