import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { GATEWAY_ENV, missingMemorySettings, NODE_FLAGS } from '../../src/memory-settings.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/src/cli.js');
const run = promisify(execFile);
// The gateway's own settings must not leak in from the test runner's environment.
const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: undefined, NODE_OPTIONS: undefined };

describe('memory settings', () => {
  it("the cli's #! line sets exactly the settings memory-settings.ts names", async () => {
    const first = (await readFile(join(root, 'src/cli.ts'), 'utf8')).split('\n')[0];
    const assignments = Object.entries(GATEWAY_ENV).map(([k, v]) => `${k}=${v}`);
    expect(first).toBe(`#!/usr/bin/env -S ${assignments.join(' ')} node ${NODE_FLAGS.join(' ')}`);
  });

  it('`corral` run as a program has them; `node dist/src/cli.js` is told what it lacks', async () => {
    const args = ['doctor', '--config', join(root, 'tests/commands/absent.yaml')];
    const direct = await run(cli, args, { env });
    expect(direct.stdout).toMatch(/^memory: +node settings of `corral` active$/m);
    const bare = await run(process.execPath, [cli, ...args], { env });
    expect(bare.stdout).toMatch(
      /^memory: +started without --max-semi-space-size=2 --v8-pool-size=1 --liftoff-only MALLOC_MMAP_THRESHOLD_=131072 /m,
    );
  });

  it('names each missing setting', () => {
    expect(missingMemorySettings([...NODE_FLAGS], { ...GATEWAY_ENV })).toEqual([]);
    expect(missingMemorySettings(['--liftoff-only'], { MALLOC_MMAP_THRESHOLD_: '1' })).toEqual([
      '--max-semi-space-size=2',
      '--v8-pool-size=1',
      'MALLOC_MMAP_THRESHOLD_=131072',
    ]);
  });
});
