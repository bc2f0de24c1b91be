import { open, rm, stat } from 'node:fs/promises';
import { NotFound, UpstreamError } from '../errors.js';
import { isNoSpace } from '../fs/free-space.js';
import { InsufficientStorage } from '../errors.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';

export interface BlobProgress {
  total: number;
  completed: number;
}

export interface BlobSource {
  url: string;
  digest: string;
  size: number;
  /** `<blob>.partial`: what was fetched so far, kept across attempts, pulls and restarts. */
  partial: string;
  headers?: Record<string, string>;
}

const PROGRESS_INTERVAL_MS = 100;

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

/**
 * Fetches a blob into its partial file, resuming with Range from whatever an earlier attempt, pull
 * or process left there, up to `attempts` times. Resolves when the partial file holds `size` bytes;
 * verifying them is the caller's job.
 */
export async function downloadBlob(
  http: GuardedFetch,
  src: BlobSource,
  progress: (p: BlobProgress) => void,
  signal: AbortSignal,
  attempts: number,
): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    let have = await sizeOf(src.partial);
    if (have > src.size) {
      await rm(src.partial, { force: true });
      have = 0;
    }
    progress({ total: src.size, completed: have });
    if (have === src.size) return;
    try {
      await fetchRange(http, src, have, progress, signal);
      if ((await sizeOf(src.partial)) === src.size) return;
      lastError = new UpstreamError(`pull: blob ${src.digest} ended before its ${src.size} bytes`, 502);
    } catch (err) {
      if (signal.aborted || err instanceof NotFound || err instanceof InsufficientStorage) throw err;
      if ((err as { status?: number }).status === 403) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

async function fetchRange(
  http: GuardedFetch,
  src: BlobSource,
  have: number,
  progress: (p: BlobProgress) => void,
  signal: AbortSignal,
): Promise<void> {
  const headers = { ...src.headers, ...(have > 0 ? { range: `bytes=${have}-` } : {}) };
  const { response } = await http.fetch(src.url, { headers, signal });
  if (response.status === 416) {
    await response.body?.cancel().catch(() => undefined);
    // What is on disk is not a prefix the server can extend: start over on the next attempt.
    await rm(src.partial, { force: true });
    throw new UpstreamError(`pull: blob ${src.digest}: the server refused to resume`, 502);
  }
  if (response.status === 404) {
    await response.body?.cancel().catch(() => undefined);
    throw new NotFound(`pull: blob ${src.digest} not found on the registry`);
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel().catch(() => undefined);
    throw new UpstreamError(`pull: blob ${src.digest}: the registry answered ${response.status}`, 502);
  }
  const resumed = response.status === 206 && rangeStart(response.headers.get('content-range')) === have;
  const fh = await open(src.partial, resumed ? 'a' : 'w');
  let completed = resumed ? have : 0;
  let last = 0;
  try {
    for await (const chunk of response.body ?? []) {
      if (completed + chunk.length > src.size) throw new UpstreamError(`pull: blob ${src.digest} is too long`, 502);
      await fh.write(chunk);
      completed += chunk.length;
      if (Date.now() - last >= PROGRESS_INTERVAL_MS) {
        last = Date.now();
        progress({ total: src.size, completed });
      }
    }
  } catch (err) {
    if (isNoSpace(err)) throw new InsufficientStorage(`pull: the disk holding ${src.partial} is full`);
    if (signal.aborted || err instanceof UpstreamError) throw err;
    throw new UpstreamError(`pull: download of ${src.digest} interrupted: ${(err as Error).message}`, 502, {
      cause: err,
    });
  } finally {
    await fh.close();
    progress({ total: src.size, completed });
  }
}

function rangeStart(header: string | null): number | undefined {
  const m = /^bytes (\d+)-/.exec(header ?? '');
  return m ? Number(m[1]) : undefined;
}
