import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Runner } from '../../src/runner/runner.js';
import { runnerPlumbing } from '../helpers/runner.js';

let dir: string;
const fixtures = inject('fixtures');
const plumbing = runnerPlumbing();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'corral-stop-'));
});
afterAll(async () => {
  plumbing.remove();
  await rm(dir, { recursive: true, force: true });
});

describe('stopping llama-server', () => {
  it('a stop right after the child is ready ends it by signal, never by SIGKILL', async () => {
    // llama-server loses a SIGTERM that arrives just as it starts listening (about 1 stop in 40 here);
    // the runner's second SIGTERM must end it long before the SIGKILL at stop_timeout.
    const runner = new Runner({
      ...plumbing,
      model: 'tiny',
      binary: fixtures.llamaServer,
      args: ['-m', fixtures.models.chat, '-c', '256', '-t', '1', '--no-webui'],
      logFile: join(dir, 'tiny.log'),
      startupTimeoutMs: 30_000,
      stopTimeoutMs: 10_000,
    });
    const exits: { code: number | undefined; signal: string | undefined }[] = [];
    runner.on('exit', ({ code, signal }) => exits.push({ code, signal }));
    for (let i = 0; i < 40; i++) {
      await runner.start();
      await runner.stop();
    }
    expect(exits).toHaveLength(40);
    // Exit 0 after a clean shutdown, 1 after the second signal's immediate exit, or SIGTERM itself when
    // it came before llama-server installed its handler.
    expect(exits.filter((e) => e.signal === 'SIGKILL')).toEqual([]);
  }, 60_000);
});
