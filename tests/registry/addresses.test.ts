import { describe, expect, it } from 'vitest';
import { isPublicAddress } from '../../src/net/addresses.js';
import { guardedLookup } from '../../src/net/guarded-fetch.js';

describe('which addresses a pull may reach', () => {
  it('public addresses only, in every IPv4 and IPv6 spelling', () => {
    for (const a of ['1.1.1.1', '104.18.2.3', '2606:4700::1111', '2001:4860:4860::8888'])
      expect(isPublicAddress(a), a).toBe(true);
    for (const a of [
      '127.0.0.1',
      '127.9.9.9',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::',
      'not-an-address',
    ])
      expect(isPublicAddress(a), a).toBe(false);
  });

  it('names are checked again when the connection is made (no DNS rebinding past the first check)', async () => {
    const lookup = (privateHosts: string[]) =>
      new Promise<unknown>((resolve, reject) =>
        guardedLookup({ insecure: false, privateHosts })('localhost', {}, (err, address) =>
          err ? reject(err) : resolve(address),
        ),
      );
    await expect(lookup([])).rejects.toThrow(/refusing to connect to localhost .*loopback/);
    expect(await lookup(['localhost'])).toMatch(/^(127\.0\.0\.1|::1)$/);
  });
});
