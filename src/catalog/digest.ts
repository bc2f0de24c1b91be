import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { byCodeUnit } from './names.js';

/**
 * `sha256:<hex>` of a file, read through one reused buffer: multi-GB models never sit in memory, and
 * unlike a stream (a fresh 1 MiB buffer per chunk) hashing leaves no freed chunks behind for the
 * allocator to keep resident (25–35 MB of idle RSS after the first digest).
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fh = await open(path, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

interface Entry {
  size: number;
  mtimeMs: number;
  ino: number;
  digest: string;
}

export interface DigestCacheOptions {
  /** JSON file the digests persist in, e.g. `<data_dir>/digests.json`. */
  file: string;
  /** Replaceable so tests can count how often a file is actually hashed. */
  hash?: (path: string) => Promise<string>;
}

/**
 * Hashing a multi-GB GGUF takes seconds, so digests are remembered by (size, mtime, inode) and survive
 * restarts; any change to the file makes its identity differ and forces a new hash.
 */
export class DigestCache {
  private readonly file: string;
  private readonly hash: (path: string) => Promise<string>;
  private entries: Promise<Map<string, Entry>> | undefined;
  private readonly inflight = new Map<string, Promise<string>>();
  /** Saves run one after another so an older snapshot never overwrites a newer one. */
  private saving: Promise<void> = Promise.resolve();

  constructor(opts: DigestCacheOptions) {
    this.file = resolve(opts.file);
    this.hash = opts.hash ?? sha256File;
  }

  async digest(path: string): Promise<string> {
    const abs = resolve(path);
    const st = await stat(abs);
    const identity = `${abs}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
    const entries = await this.load();
    const known = entries.get(abs);
    if (known && known.size === st.size && known.mtimeMs === st.mtimeMs && known.ino === st.ino) return known.digest;
    let pending = this.inflight.get(identity);
    if (!pending) {
      pending = this.compute(abs, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }).finally(() =>
        this.inflight.delete(identity),
      );
      this.inflight.set(identity, pending);
    }
    return pending;
  }

  /** Drops entries for files that are gone, so the cache does not grow with every deleted model. */
  async prune(keep: Iterable<string>): Promise<void> {
    const entries = await this.load();
    const wanted = new Set([...keep].map((p) => resolve(p)));
    let changed = false;
    for (const key of [...entries.keys()]) {
      if (!wanted.has(key)) {
        entries.delete(key);
        changed = true;
      }
    }
    if (changed) await this.save();
  }

  private async compute(abs: string, before: Omit<Entry, 'digest'>): Promise<string> {
    const digest = await this.hash(abs);
    const after = await stat(abs);
    // A file rewritten while being hashed gets the digest of some mixture; answer it but do not remember it.
    if (after.size === before.size && after.mtimeMs === before.mtimeMs && after.ino === before.ino) {
      (await this.load()).set(abs, { ...before, digest });
      await this.save();
    }
    return digest;
  }

  private load(): Promise<Map<string, Entry>> {
    this.entries ??= readFile(this.file, 'utf8').then(
      (text) => {
        const map = new Map<string, Entry>();
        try {
          const raw = JSON.parse(text) as Record<string, Partial<Entry>>;
          for (const [k, v] of Object.entries(raw)) {
            if (
              typeof v?.digest === 'string' &&
              typeof v.size === 'number' &&
              typeof v.mtimeMs === 'number' &&
              typeof v.ino === 'number'
            ) {
              map.set(k, v as Entry);
            }
          }
        } catch {
          // A corrupt cache only costs re-hashing.
        }
        return map;
      },
      () => new Map<string, Entry>(),
    );
    return this.entries;
  }

  private save(): Promise<void> {
    const run = this.saving.then(async () => {
      const entries = await this.load();
      const body = JSON.stringify(Object.fromEntries([...entries].sort(([a], [b]) => byCodeUnit(a, b))), null, 1);
      await mkdir(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(tmp, body);
      await rename(tmp, this.file);
    });
    this.saving = run.catch(() => undefined);
    return run;
  }
}
