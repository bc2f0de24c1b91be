import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { Runner } from '../../src/runner/runner.js';

const fixtures = inject('fixtures');
let runner: Runner | undefined;
const logs = mkdtempSync(join(tmpdir(), 'corral-env-'));

afterEach(async () => {
  await runner?.stop();
  runner = undefined;
  delete process.env.MALLOC_MMAP_THRESHOLD_;
});
afterAll(() => rmSync(logs, { recursive: true, force: true }));

function environOf(pid: number): Record<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
  return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

describe('llama-server child environment', () => {
  it('inherits the gateway environment except its allocator tuning, plus the model env', async () => {
    process.env.MALLOC_MMAP_THRESHOLD_ = '131072';
    runner = new Runner({
      model: 'tiny',
      binary: fixtures.llamaServer,
      args: ['-m', fixtures.models.chat, '-c', '256', '-t', '1', '--no-webui'],
      logFile: join(logs, 'tiny.log'),
      startupTimeoutMs: 30_000,
      stopTimeoutMs: 5_000,
      env: { CORRAL_TEST_MODEL_ENV: 'from-model' },
    });
    await runner.start();
    const env = environOf(runner.pid!);
    expect(env.MALLOC_MMAP_THRESHOLD_).toBeUndefined();
    expect(env.CORRAL_TEST_MODEL_ENV).toBe('from-model');
    expect(env.PATH).toBe(process.env.PATH);
  });
});
