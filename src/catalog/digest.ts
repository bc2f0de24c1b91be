import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

interface CacheEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  digest: string;
}

/**
 * sha256 digests of model files, cached on disk by path + size + mtime + inode so a large file is
 * hashed once, not on every start. Concurrent requests for one file share one computation.
 */
export class DigestCache {
  private entries: Record<string, CacheEntry> | undefined;
  private readonly pending = new Map<string, Promise<string>>();
  /** How many files were actually read (for tests and the doctor). */
  hashed = 0;

  constructor(private readonly file: string) {}

  private async load(): Promise<Record<string, CacheEntry>> {
    if (!this.entries) {
      try {
        this.entries = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, CacheEntry>;
      } catch {
        this.entries = {};
      }
    }
    return this.entries;
  }

  async digest(path: string): Promise<string> {
    const running = this.pending.get(path);
    if (running) return running;
    const job = this.compute(path).finally(() => this.pending.delete(path));
    this.pending.set(path, job);
    return job;
  }

  private async compute(path: string): Promise<string> {
    const entries = await this.load();
    const st = await stat(path);
    const hit = entries[path];
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino) return hit.digest;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    this.hashed++;
    const digest = `sha256:${hash.digest('hex')}`;
    entries[path] = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, digest };
    await this.save(entries);
    return digest;
  }

  private async save(entries: Record<string, CacheEntry>): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(entries));
    await rename(tmp, this.file);
  }
}
