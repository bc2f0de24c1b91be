import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigestCache, sha256File } from '../../src/catalog/digest.js';

describe('DigestCache', () => {
  let dir: string;
  let model: string;
  let cacheFile: string;
  const hashed: string[] = [];
  const counting = (path: string): Promise<string> => {
    hashed.push(path);
    return sha256File(path);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'corral-digest-'));
    model = join(dir, 'm.gguf');
    cacheFile = join(dir, 'data', 'digests.json');
    await writeFile(model, Buffer.alloc(3 * 1024 * 1024 + 7, 0xab));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('hashes the file with sha256', async () => {
    const expected = createHash('sha256')
      .update(await readFile(model))
      .digest('hex');
    expect(await sha256File(model)).toBe(`sha256:${expected}`);
  });

  it('shares one computation between concurrent callers and never hashes an unchanged file twice', async () => {
    hashed.length = 0;
    const cache = new DigestCache({ file: cacheFile, hash: counting });
    const all = await Promise.all([1, 2, 3, 4].map(() => cache.digest(model)));
    expect(new Set(all).size).toBe(1);
    expect(hashed).toHaveLength(1);
    expect(await cache.digest(model)).toBe(all[0]);
    expect(hashed).toHaveLength(1);

    const stored = JSON.parse(await readFile(cacheFile, 'utf8')) as Record<string, { digest: string; size: number }>;
    expect(stored[model]).toMatchObject({ digest: all[0], size: 3 * 1024 * 1024 + 7 });

    // A new instance (a restarted gateway) trusts the file on disk.
    const restarted = new DigestCache({ file: cacheFile, hash: counting });
    expect(await restarted.digest(model)).toBe(all[0]);
    expect(hashed).toHaveLength(1);
  });

  it('re-hashes a file whose size or mtime changed', async () => {
    hashed.length = 0;
    const cache = new DigestCache({ file: cacheFile, hash: counting });
    const before = await cache.digest(model);
    await writeFile(model, Buffer.alloc(1024, 0xcd));
    const after = await cache.digest(model);
    expect(after).not.toBe(before);
    expect(hashed).toHaveLength(1);
    // Same size, new content, only the mtime tells.
    await writeFile(model, Buffer.alloc(1024, 0xef));
    await utimes(model, new Date(), new Date(Date.now() + 5000));
    expect(await cache.digest(model)).not.toBe(after);
    expect(hashed).toHaveLength(2);
  });

  it('survives a corrupt cache file and prunes deleted files', async () => {
    await writeFile(cacheFile, '{not json');
    hashed.length = 0;
    const cache = new DigestCache({ file: cacheFile, hash: counting });
    await cache.digest(model);
    expect(hashed).toHaveLength(1);
    await cache.prune([]);
    expect(JSON.parse(await readFile(cacheFile, 'utf8'))).toEqual({});
  });
});
