import { describe, expect, it } from 'vitest';
import { StoreUnavailable } from '../../src/errors.js';
import { createLookupCache } from '../../src/store/lookup-cache.js';

describe('the credential cache', () => {
  const setup = () => {
    let t = 0;
    let rows: Record<string, string> = { a: 'row-a' };
    let down = false;
    let loads = 0;
    const cache = createLookupCache<string>({ freshMs: 1000, staleMs: 60_000, now: () => t });
    const load = (key: string) => async () => {
      loads++;
      if (down) throw new StoreUnavailable('down');
      return rows[key];
    };
    return {
      get: (key: string) => cache.get(key, load(key)),
      cache,
      advance: (ms: number) => void (t += ms),
      setRows: (r: Record<string, string>) => void (rows = r),
      setDown: (d: boolean) => void (down = d),
      loads: () => loads,
    };
  };

  it('reuses a row while fresh, then asks again; never remembers a miss', async () => {
    const c = setup();
    expect(await c.get('a')).toBe('row-a');
    c.setRows({ a: 'row-a2', b: 'row-b' });
    c.advance(999);
    expect(await c.get('a')).toBe('row-a');
    c.advance(1);
    expect(await c.get('a')).toBe('row-a2');
    expect(await c.get('b')).toBe('row-b');
    c.setRows({});
    c.advance(1000);
    expect(await c.get('b')).toBeUndefined();
    c.setRows({ b: 'back' });
    expect(await c.get('b')).toBe('back');
  });

  it('serves a row validated within the last minute while the store is down, and nothing older', async () => {
    const c = setup();
    await c.get('a');
    c.setDown(true);
    c.advance(59_999);
    expect(await c.get('a')).toBe('row-a');
    c.advance(1);
    await expect(c.get('a')).rejects.toThrow(StoreUnavailable);
    await expect(c.get('unknown')).rejects.toThrow(StoreUnavailable);
    c.setDown(false);
    expect(await c.get('a')).toBe('row-a');
  });

  it('drops a revoked row at once, even from a load already under way, and shares concurrent loads', async () => {
    const c = setup();
    const inFlight = c.get('a');
    c.cache.delete('a');
    await inFlight;
    c.setRows({ a: 'revoked' });
    expect(await c.get('a')).toBe('revoked');
    c.advance(1000);
    const before = c.loads();
    await Promise.all([c.get('a'), c.get('a'), c.get('a')]);
    expect(c.loads() - before).toBe(1);
  });
});
