import { statfs } from 'node:fs/promises';
import { InsufficientStorage } from '../errors.js';

/** Bytes available to this process on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

/**
 * 507 unless `needed` bytes fit in `dir` with `reserve` bytes left over: a download or upload that
 * would fill the disk is refused before it starts rather than failing (or starving others) half-way.
 */
export async function assertSpace(dir: string, needed: number, reserve: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free < needed + reserve) {
    throw new InsufficientStorage(
      `${what}: not enough disk space in ${dir}: ${needed} bytes needed (plus ${reserve} kept free), ${free} free`,
    );
  }
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
