import { describe, expect, it } from 'vitest';
import { BuildProgress, formatDuration } from '../../src/provision/progress.js';

describe('build progress with the time left', () => {
  it('starts from the estimate, then extrapolates from the pace so far, once per percent', () => {
    let t = 0;
    const lines: string[] = [];
    const bar = new BuildProgress(
      (l) => lines.push(l),
      300,
      () => t,
    );
    bar.line('-- Configuring done');
    t = 10_000;
    bar.line('[  2%] Building C object vendor/hash/xxhash.c.o');
    bar.line('[  2%] Building C object vendor/hash/sha1.c.o');
    t = 120_000;
    bar.line('[ 50%] Building CXX object tools/server/server-context.cpp.o');
    t = 240_000;
    bar.line('[100%] Linking CXX executable bin/llama-server');
    expect(lines).toEqual([
      '[  2%] Building C object vendor/hash/xxhash.c.o (about 5 minutes left)',
      '[ 50%] Building CXX object tools/server/server-context.cpp.o (about 2 minutes left)',
      '[100%] Linking CXX executable bin/llama-server (under a minute left)',
    ]);
  });

  it('words durations for people', () => {
    expect([30, 60, 89, 150, 420].map(formatDuration)).toEqual([
      'under a minute',
      'about 1 minute',
      'about 1 minute',
      'about 3 minutes',
      'about 7 minutes',
    ]);
  });
});
