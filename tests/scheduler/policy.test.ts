import { describe, expect, it } from 'vitest';
import { diffConfig } from '../../src/config/diff.js';
import { parseDuration } from '../../src/config/duration.js';
import { ConfigError, interpolateEnv, parseConfig } from '../../src/config/load.js';
import { resolveBudget } from '../../src/scheduler/budget.js';
import { planRoom, type Resident } from '../../src/scheduler/eviction.js';
import { Supervisor } from '../../src/scheduler/supervisor.js';

const MB = 1e6;
const r = (name: string, over: Partial<Resident> = {}): Resident => ({
  name,
  memoryBytes: 100 * MB,
  lastUsed: 0,
  busy: false,
  pinned: false,
  ...over,
});
const none = new Set<string>();

describe('planRoom', () => {
  it('fits without evicting when under the limits', () => {
    expect(
      planRoom({ name: 'c', memoryBytes: 100 * MB, exclusiveWith: none }, [r('a'), r('b')], {
        maxLoadedModels: 3,
        memoryBudget: 0,
      }),
    ).toEqual({ kind: 'fits', evict: [] });
  });
  it('evicts the least recently used idle model first, and only as many as needed', () => {
    const plan = planRoom(
      { name: 'd', memoryBytes: 100 * MB, exclusiveWith: none },
      [r('a', { lastUsed: 3 }), r('b', { lastUsed: 1 }), r('c', { lastUsed: 2 })],
      { maxLoadedModels: 3, memoryBudget: 0 },
    );
    expect(plan).toEqual({ kind: 'fits', evict: ['b'] });
  });
  it('never evicts busy or pinned models; waits when only busy ones could make room', () => {
    const residents = [
      r('a', { busy: true, lastUsed: 0 }),
      r('p', { pinned: true, lastUsed: 0 }),
      r('b', { lastUsed: 5 }),
    ];
    expect(
      planRoom({ name: 'x', memoryBytes: 100 * MB, exclusiveWith: none }, residents, {
        maxLoadedModels: 3,
        memoryBudget: 0,
      }),
    ).toEqual({ kind: 'fits', evict: ['b'] });
    expect(
      planRoom({ name: 'x', memoryBytes: 100 * MB, exclusiveWith: none }, residents, {
        maxLoadedModels: 2,
        memoryBudget: 0,
      }).kind,
    ).toBe('wait');
  });
  it('memory budget: evicts by bytes', () => {
    const plan = planRoom(
      { name: 'x', memoryBytes: 250 * MB, exclusiveWith: none },
      [r('a', { lastUsed: 1 }), r('b', { lastUsed: 2 }), r('c', { lastUsed: 3 })],
      { maxLoadedModels: 0, memoryBudget: 400 * MB },
    );
    expect(plan).toEqual({ kind: 'fits', evict: ['a', 'b'] });
  });
  it('a model larger than the whole budget can never load, with a clear reason', () => {
    const plan = planRoom({ name: 'huge', memoryBytes: 20e9, exclusiveWith: none }, [], {
      maxLoadedModels: 0,
      memoryBudget: 16e9,
    });
    expect(plan).toEqual({ kind: 'never', reason: 'model "huge" needs ~20.0 GB but the memory budget is 16.0 GB' });
  });
  it('pinned models that leave no room make a load impossible rather than a wait', () => {
    expect(
      planRoom({ name: 'x', memoryBytes: 100 * MB, exclusiveWith: none }, [r('p', { pinned: true })], {
        maxLoadedModels: 1,
        memoryBudget: 0,
      }).kind,
    ).toBe('never');
    expect(
      planRoom({ name: 'x', memoryBytes: 300 * MB, exclusiveWith: none }, [r('p', { pinned: true })], {
        maxLoadedModels: 0,
        memoryBudget: 350 * MB,
      }).kind,
    ).toBe('never');
  });
  it('swap groups: rivals go even when limits would allow them; a busy rival means wait', () => {
    const g = new Set(['a']);
    expect(
      planRoom({ name: 'b', memoryBytes: MB, exclusiveWith: g }, [r('a'), r('c')], {
        maxLoadedModels: 0,
        memoryBudget: 0,
      }),
    ).toEqual({ kind: 'fits', evict: ['a'] });
    expect(
      planRoom({ name: 'b', memoryBytes: MB, exclusiveWith: g }, [r('a', { busy: true })], {
        maxLoadedModels: 0,
        memoryBudget: 0,
      }).kind,
    ).toBe('wait');
    expect(
      planRoom({ name: 'b', memoryBytes: MB, exclusiveWith: g }, [r('a', { pinned: true })], {
        maxLoadedModels: 0,
        memoryBudget: 0,
      }).kind,
    ).toBe('never');
  });
});

describe('Supervisor', () => {
  const failure = (at: number) => ({ reason: 'boom', exitCode: 1, lastLines: ['boom'], at: new Date(at) });
  it('backs off exponentially up to the cap, gives up after max_restarts, and forgives after a stable run', () => {
    let now = 0;
    const s = new Supervisor(
      () => ({ initialMs: 100, maxMs: 300, maxRestarts: 4, resetAfterMs: 10_000 }),
      () => now,
    );
    expect(s.failed('m', failure(now)).delayMs).toBe(100);
    expect(s.failed('m', failure(now)).delayMs).toBe(200);
    expect(s.failed('m', failure(now)).delayMs).toBe(300);
    const last = s.failed('m', failure(now));
    expect(last.delayMs).toBeUndefined();
    expect(last.record.gaveUp).toBe(true);
    expect(s.blocked('m')).toMatch(/crash-looping \(4 failures in a row\).*boom/);
    now = 10_001; // quiet period over: one more attempt is let through
    expect(s.blocked('m')).toBeUndefined();
    s.ready('m');
    now = 25_000; // it stayed up longer than reset_after: the count starts again
    expect(s.failed('m', failure(now)).delayMs).toBe(100);
  });
});

describe('config', () => {
  it('durations: strings, plain seconds, zero and negative', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('300s')).toBe(300_000);
    expect(parseDuration(30)).toBe(30_000);
    expect(parseDuration('30')).toBe(30_000);
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(-1)).toBe(Infinity);
    expect(parseDuration('-1m')).toBe(Infinity);
  });
  it('interpolates ${VAR} and ${VAR:-default}; an unset variable without default is a file:line error', () => {
    expect(interpolateEnv('a: ${A}\nb: ${B:-two}\n# ${C}', { A: 'one' }, 'f.yaml')).toBe('a: one\nb: two\n# ${C}');
    expect(() => interpolateEnv('a: 1\nb: ${MISSING}', {}, 'f.yaml')).toThrow(ConfigError);
    try {
      interpolateEnv('a: 1\nb: ${MISSING}', {}, 'f.yaml');
    } catch (err) {
      expect((err as ConfigError).problems[0]).toMatch(/^f\.yaml:2: environment variable MISSING/);
    }
    const cfg = parseConfig('scheduler:\n  max_loaded_models: ${MAXM:-3}\n  memory_budget: ${BUDGET}\n', 'c.yaml', {
      BUDGET: '16GB',
    });
    expect(cfg.scheduler.max_loaded_models).toBe(3);
    expect(cfg.scheduler.memory_budget).toBe('16GB');
    expect(cfg.scheduler.restart_backoff.max_restarts).toBe(5);
  });
  it('invalid restart_backoff durations are reported with file:line', () => {
    expect(() => parseConfig('scheduler:\n  restart_backoff:\n    initial: soon\n', 'c.yaml')).toThrow(
      /invalid config/,
    );
    try {
      parseConfig('scheduler:\n  restart_backoff:\n    initial: soon\n', 'c.yaml');
    } catch (err) {
      expect((err as ConfigError).problems[0]).toMatch(/^c\.yaml:3: scheduler\.restart_backoff\.initial/);
    }
  });
  it('invalid sizes are reported with file:line', () => {
    const problems = (text: string) => {
      try {
        parseConfig(text, 'c.yaml');
      } catch (err) {
        return (err as ConfigError).problems;
      }
      return [];
    };
    expect(problems('llama_server:\n  log_max_size: huge\n')).toEqual([
      expect.stringMatching(/^c\.yaml:2: llama_server\.log_max_size: invalid size "huge"/),
    ]);
    expect(problems('scheduler:\n  memory_budget: lots\n')).toEqual([
      expect.stringMatching(/^c\.yaml:2: scheduler\.memory_budget: invalid size "lots"/),
    ]);
    expect(problems('llama_server:\n  log_max_size: 5MiB\n')).toEqual([]);
  });
  it('memory budget: bytes, sizes, auto = fraction of RAM + VRAM', () => {
    expect(resolveBudget({ memory_budget: '16GB', memory_fraction: 0.8 }, { vramBytes: 0 })).toBe(16e9);
    expect(resolveBudget({ memory_budget: 1234, memory_fraction: 0.8 }, { vramBytes: 0 })).toBe(1234);
    expect(resolveBudget({ memory_budget: 'auto', memory_fraction: 0.5 }, { ramBytes: 8e9, vramBytes: 2e9 })).toBe(5e9);
  });
  it('diff names added, removed and changed models and sections', () => {
    const a = parseConfig('models:\n  x: { path: x.gguf }\n  y: { path: y.gguf }\n', 'c');
    const b = parseConfig(
      'models:\n  x: { path: x.gguf, args: ["-b", "64"] }\n  z: { path: z.gguf }\nserver: { port: 1 }\n',
      'c',
    );
    expect(diffConfig(a, b)).toEqual([
      'model x changed (args)',
      'model y removed',
      'model z added',
      'server changed (takes effect after a restart of Corral)',
    ]);
  });
});
