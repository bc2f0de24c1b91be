import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/logging.js';

describe('redactSecrets', () => {
  it('censors secret-named keys at any depth down to four levels, in objects and arrays', () => {
    const input = {
      password: 'p0',
      user: { name: 'ann', token: 't1', nested: { api_key: 'k2', deeper: { Authorization: 'Bearer b3' } } },
      headers: { cookie: 'c=4', 'x-api-key': 'x5', 'user-agent': 'curl' },
      users: [{ secret: 's6' }, 'plain'],
      tokens: 12,
    };
    const out = redactSecrets(input);
    const text = JSON.stringify(out);
    for (const secret of ['p0', 't1', 'k2', 'b3', 'c=4', 'x5', 's6']) expect(text).not.toContain(secret);
    expect(out).toMatchObject({
      user: { name: 'ann' },
      headers: { 'user-agent': 'curl' },
      users: [{ secret: '[Redacted]' }, 'plain'],
      tokens: 12,
    });
  });

  it('leaves the caller’s objects untouched and returns the same object when nothing is secret', () => {
    const input = { user: { token: 'abc' } };
    redactSecrets(input);
    expect(input.user.token).toBe('abc');
    const clean = { status: 200, route: { url: '/api/tags' } };
    expect(redactSecrets(clean)).toBe(clean);
  });

  it('does not walk class instances or absent values', () => {
    class Holder {
      token = 'kept-for-its-serializer';
    }
    const h = new Holder();
    expect(redactSecrets({ h, token: undefined })).toEqual({ h, token: undefined });
  });
});
