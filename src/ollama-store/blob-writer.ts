import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { BadRequest, InsufficientStorage } from '../errors.js';
import { assertSpace, freeBytes, isNoSpace } from '../fs/free-space.js';
import { parseDigest } from './names.js';
import type { OllamaStore } from './store.js';

export interface BlobWriteOptions {
  /** Bytes announced by the sender (Content-Length), checked against free space before reading. */
  size?: number | undefined;
  /** Free bytes that must remain on the disk. */
  reserve: number;
}

/** How often free space is rechecked while a body of unknown size streams in. */
const RECHECK_BYTES = 64 * 1024 * 1024;

/**
 * Streams a body into the store's blobs, hashing as it goes, and keeps it under its digest only if
 * the sha256 matches: a mismatch is 400, a short disk 507, and neither (nor a sender that goes away)
 * leaves a partial file behind.
 */
export async function writeBlob(
  store: OllamaStore,
  digest: string,
  body: AsyncIterable<Uint8Array>,
  opts: BlobWriteOptions,
): Promise<void> {
  const want = parseDigest(digest);
  if (!want) throw new BadRequest('invalid digest format');
  const final = store.blobFile(want);
  await mkdir(store.blobsDir, { recursive: true });
  await assertSpace(store.blobsDir, opts.size ?? 0, opts.reserve, 'blob upload');
  const tmp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
  const hash = createHash('sha256');
  const fh = await open(tmp, 'w', 0o644);
  let kept = false;
  try {
    let written = 0;
    let nextCheck = RECHECK_BYTES;
    for await (const chunk of body) {
      await fh.write(chunk);
      hash.update(chunk);
      written += chunk.length;
      if (written >= nextCheck) {
        nextCheck += RECHECK_BYTES;
        const free = await freeBytes(store.blobsDir);
        if (free < opts.reserve)
          throw new InsufficientStorage(`blob upload: disk space in ${store.blobsDir} fell below the reserve`);
      }
    }
    await fh.close();
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== want) throw new BadRequest(`digest mismatch, expected "${want}", got "${got}"`);
    await rename(tmp, final);
    kept = true;
  } catch (err) {
    if (isNoSpace(err)) throw new InsufficientStorage(`blob upload: the disk holding ${store.blobsDir} is full`);
    throw err;
  } finally {
    await fh.close().catch(() => undefined);
    if (!kept) await rm(tmp, { force: true });
  }
}
