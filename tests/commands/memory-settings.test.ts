import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAY_ENV, missingMemorySettings, NODE_FLAGS } from '../../src/memory-settings.js';

const root = resolve(import.meta.dirname, '../..');

describe('runtime flags', () => {
  it('the launcher, bin/corral, starts Node with exactly the settings memory-settings.ts names', async () => {
    const launcher = await readFile(join(root, 'bin/corral'), 'utf8');
    const exec = launcher.split('\n').find((l) => l.includes(' exec '));
    const assignments = Object.entries(GATEWAY_ENV).map(([k, v]) => `${k}=${v}`);
    expect(exec).toBe(`${assignments.join(' ')} exec node ${NODE_FLAGS.join(' ')} "$cli" "$@"`);
  });

  it('every way of starting Corral goes through it', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(pkg.bin.corral).toBe('bin/corral');
    for (const script of ['start', 'doctor', 'provision']) expect(pkg.scripts[script]).toContain('bin/corral ');
    expect(Object.values(pkg.scripts).join('\n')).not.toContain('dist/src/cli.js');
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
