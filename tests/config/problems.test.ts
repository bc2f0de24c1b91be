import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'c.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('config problems', () => {
  it('reports every problem at once (env, schema and value checks), each with file:line, in line order', () => {
    const text = [
      'server:',
      '  port: "abc"', // 2: schema
      '  drain_timeout: soon', // 3: value check
      'defaults:',
      '  keep_alive: ${NOPE}', // 5: unset variable (then an empty duration)
      '  ctx_size: -1', // 6: schema
      'models:',
      '  a:',
      '    path: 7', // 9: schema
      'bogus: 1', // 10: unknown key
    ].join('\n');
    const found = problems(text);
    expect(found).toEqual([
      expect.stringMatching(/^c\.yaml:2: server\.port: Expected integer/),
      expect.stringMatching(/^c\.yaml:3: server\.drain_timeout: invalid duration "soon"/),
      expect.stringMatching(/^c\.yaml:5: environment variable NOPE is not set/),
      expect.stringMatching(/^c\.yaml:5: defaults\.keep_alive: /),
      expect.stringMatching(/^c\.yaml:6: defaults\.ctx_size: Expected integer to be greater or equal to 0/),
      expect.stringMatching(/^c\.yaml:9: models\.a\.path: Expected string/),
      expect.stringMatching(/^c\.yaml:10: bogus: Unexpected property/),
    ]);
  });

  it('reports a key the schema rejected once, not again from the value checks', () => {
    const found = problems('defaults:\n  keep_alive: [1]\n');
    expect(found.filter((p) => p.includes('defaults.keep_alive'))).toHaveLength(1);
  });

  it('a fleet needs store.url, durations it can read, and an expiry longer than its heartbeat', () => {
    const text = ['fleet:', '  enabled: true', '  heartbeat: 5s', '  expiry: 2s', '  connect_timeout: soon'].join('\n');
    expect(problems(text)).toEqual([
      'c.yaml:2: fleet.enabled: needs store.url, the PostgreSQL database the nodes share',
      'c.yaml:4: fleet.expiry: must be longer than fleet.heartbeat',
      expect.stringMatching(/^c\.yaml:5: fleet\.connect_timeout: invalid duration "soon"/),
    ]);
  });

  it('lists at most 50 problems and counts the rest', () => {
    const text = Array.from({ length: 60 }, (_, i) => `bogus_${i}: 1`).join('\n');
    const found = problems(text);
    expect(found).toHaveLength(51);
    expect(found[0]).toMatch(/^c\.yaml:1: bogus_0: Unexpected property/);
    expect(found.at(-1)).toBe('… and 10 more problems');
  });
});
