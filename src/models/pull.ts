import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { sha256File } from '../catalog/digest.js';
import { normalizeModelName } from '../catalog/names.js';
import { ChecksumMismatch, NotFound, UpstreamError } from '../errors.js';
import { containedPath } from '../fs/contained.js';
import { assertSpace } from '../fs/free-space.js';
import { GuardedFetch, type FetchPolicy } from '../net/guarded-fetch.js';
import { isHfReference, isUrlReference, resolveHf, resolveUrl, type PullFile, type PullSource } from './hf-resolver.js';
import type { Manifest } from './manifest.js';

/** One line of Ollama's pull progress stream. */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface PullerDeps {
  /** The managed models directory (the first of models_dirs). */
  modelsDir(): string;
  manifest(): Manifest;
  huggingfaceUrl(): string;
  /** What the pull may connect to (scheme, private addresses), checked on every redirect. */
  policy(insecure: boolean): FetchPolicy;
  /** Re-reads the catalogue once a model is in place. */
  refresh(): Promise<void>;
  /** Free bytes kept in reserve beyond the file itself, read at each pull (a reload may change it). */
  reserveBytes?(): number;
  /** Download attempts per pull; each one resumes where the previous one stopped. */
  attempts?: number;
}

/** A running pull; later callers for the same model subscribe to it instead of downloading twice. */
export interface PullJob {
  /** Settles once the source is resolved (rejects with 404 and the like before any byte moves). */
  resolved: Promise<unknown>;
  done: Promise<void>;
  subscribe(listener: (p: PullProgress) => void): () => void;
}

const PROGRESS_INTERVAL_MS = 100;

/**
 * The job running for `key`, or a new one from `start`: later callers subscribe to the running one
 * instead of pulling twice. It is aborted once its last subscriber leaves (partial files stay for a
 * later resume) and forgotten when it ends.
 */
export function sharedJob(
  jobs: Map<string, PullJob>,
  key: string,
  start: (emit: (p: PullProgress) => void, signal: AbortSignal) => { resolved: Promise<unknown>; done: Promise<void> },
): PullJob {
  const existing = jobs.get(key);
  if (existing) return existing;
  const listeners = new Set<(p: PullProgress) => void>();
  const controller = new AbortController();
  const { resolved, done } = start((p) => {
    for (const l of listeners) l(p);
  }, controller.signal);
  const job: PullJob = {
    resolved,
    done,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) controller.abort();
      };
    },
  };
  jobs.set(key, job);
  const forget = (): void => {
    if (jobs.get(key) === job) jobs.delete(key);
  };
  done.then(forget, forget);
  resolved.catch(() => undefined);
  return job;
}

export class Puller {
  private readonly jobs = new Map<string, PullJob>();

  constructor(private readonly deps: PullerDeps) {}

  static supports(ref: string): boolean {
    try {
      return isHfReference(ref) || isUrlReference(ref);
    } catch {
      return false;
    }
  }

  pull(reference: string, insecure = false): PullJob {
    const name = normalizeModelName(reference);
    return sharedJob(this.jobs, name, (emit, signal) => {
      const http = new GuardedFetch(this.deps.policy(insecure));
      const resolved = this.resolve(reference, http, signal);
      const done = resolved.then((src) => this.fetchInto(name, src, http, emit, signal)).finally(() => http.close());
      return { resolved, done };
    });
  }

  private async resolve(reference: string, http: GuardedFetch, signal: AbortSignal): Promise<PullSource> {
    if (isHfReference(reference)) return resolveHf(reference, this.deps.huggingfaceUrl(), http, signal);
    if (isUrlReference(reference)) return resolveUrl(reference);
    throw new NotFound(
      `pull model manifest: "${reference}" is not a Hugging Face reference (hf.co/{user}/{repo}:{quant}) or a URL to a .gguf file; Corral cannot pull from the Ollama registry`,
    );
  }

  private async fetchInto(
    name: string,
    src: PullSource,
    http: GuardedFetch,
    emit: (p: PullProgress) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const modelsDir = this.deps.modelsDir();
    const targets = src.files.map((f) => inside(modelsDir, f.relPath));
    const manifest = this.deps.manifest();
    const known = (await manifest.read()).models[name];
    // The manifest records the first file's sha256; the other shards count as current when present.
    let sha256 = src.files[0]!.sha256;
    const present = (await Promise.all(targets.map(isFile))).every(Boolean);
    if (!(present && known?.path === targets[0] && (!sha256 || known?.sha256 === sha256))) {
      sha256 = (await this.downloadAll(src.files, targets, http, emit, signal))[0];
    }
    let mmproj: string | undefined;
    if (src.projector) {
      mmproj = inside(modelsDir, src.projector.relPath);
      if (!(await isFile(mmproj)))
        await this.place([mmproj], [await this.download(src.projector, mmproj, http, emit, signal)]);
    }
    emit({ status: 'writing manifest' });
    await manifest.update((data) => {
      data.models[name] = {
        kind: 'pulled',
        path: targets[0]!,
        source: src.reference,
        sha256,
        mmproj,
        createdAt: new Date().toISOString(),
      };
      delete data.hidden[name];
    });
    await this.deps.refresh();
    emit({ status: 'success' });
  }

  /**
   * Downloads every file (each shard of a split model) to its `.partial` and verifies it; only when all
   * are verified are they renamed into place. So a failed shard leaves no `.gguf` of the set behind,
   * just the `.partial` files a later pull resumes from. Returns the files' sha256s.
   */
  private async downloadAll(
    files: PullFile[],
    targets: string[],
    http: GuardedFetch,
    emit: (p: PullProgress) => void,
    signal: AbortSignal,
  ): Promise<string[]> {
    await mkdir(dirname(targets[0]!), { recursive: true });
    // All shards at once: running out of space on the last of three 40 GB files wastes the first two.
    await this.checkSpace(dirname(targets[0]!), await remainingBytes(files, targets));
    const verified: { partial: string; sha256: string }[] = [];
    for (let i = 0; i < files.length; i++)
      verified.push(await this.download(files[i]!, targets[i]!, http, emit, signal));
    await this.place(targets, verified);
    return verified.map((v) => v.sha256);
  }

  /** Last shard first, shard 1 last: a catalogue refresh in between never finds a first shard without its siblings. */
  private async place(targets: string[], verified: { partial: string }[]): Promise<void> {
    for (let i = targets.length - 1; i >= 0; i--) await rename(verified[i]!.partial, targets[i]!);
  }

  /** Downloads to `<target>.partial`, resuming with Range, and verifies it; the caller moves it into place. */
  private async download(
    src: PullFile,
    target: string,
    http: GuardedFetch,
    emit: (p: PullProgress) => void,
    signal: AbortSignal,
  ): Promise<{ partial: string; sha256: string }> {
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial`;
    const digest = `sha256:${src.sha256 ?? createHash('sha256').update(src.url).digest('hex')}`;
    const status = `pulling ${digest.slice(7, 19)}`;
    let expectedSha = src.sha256;
    let total = src.size;
    let lastError: unknown;
    const attempts = this.deps.attempts ?? 3;
    for (let attempt = 0; attempt < attempts; attempt++) {
      let have = await stat(partial).then(
        (s) => s.size,
        () => 0,
      );
      if (total !== undefined && have === total && have > 0) break;
      const { response: res } = await http.fetch(src.url, {
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
        signal,
      });
      if (res.status === 416) {
        // The partial file is not a prefix we can extend: start over.
        await res.body?.cancel().catch(() => undefined);
        await rm(partial, { force: true });
        continue;
      }
      if (res.status === 404) throw new NotFound(`pull: ${src.url} not found (404)`);
      if (!res.ok) throw new UpstreamError(`pull: ${src.url} answered ${res.status}`, 502);
      if (res.status !== 206) have = 0;
      const length = Number(res.headers.get('content-length') ?? NaN);
      total ??= Number.isFinite(length) ? have + length : undefined;
      expectedSha ??= publishedSha(res.headers);
      if (attempt === 0 || have === 0)
        await this.checkSpace(dirname(target), (total ?? 0) - have).catch(async (err: unknown) => {
          // An unread body holds the connection (and the pull's end) until the server gives up on it.
          await res.body?.cancel().catch(() => undefined);
          throw err;
        });
      const fh = await open(partial, have > 0 ? 'a' : 'w');
      let completed = have;
      let lastEmit = 0;
      emit({ status, digest, total: total ?? 0, completed });
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          await fh.write(chunk);
          completed += chunk.length;
          if (Date.now() - lastEmit >= PROGRESS_INTERVAL_MS) {
            lastEmit = Date.now();
            emit({ status, digest, total: total ?? completed, completed });
          }
        }
        emit({ status, digest, total: total ?? completed, completed });
        lastError = undefined;
        if (total === undefined || completed >= total) break;
        lastError = new UpstreamError(`pull: ${src.url} ended after ${completed} of ${total} bytes`, 502);
      } catch (err) {
        if (signal.aborted) throw err;
        lastError = new UpstreamError(`pull: download of ${src.url} interrupted: ${(err as Error).message}`, 502, {
          cause: err,
        });
      } finally {
        await fh.close();
      }
    }
    if (lastError) throw lastError;

    emit({ status: 'verifying sha256 digest' });
    const actual = (await sha256File(partial)).slice('sha256:'.length);
    if (expectedSha && actual !== expectedSha) {
      await rm(partial, { force: true });
      throw new ChecksumMismatch(
        `pull: sha256 mismatch for ${src.url}: expected ${expectedSha}, got ${actual}; the download was discarded`,
      );
    }
    return { partial, sha256: actual };
  }

  private async checkSpace(dir: string, needed: number): Promise<void> {
    if (needed <= 0) return;
    await assertSpace(dir, needed, this.deps.reserveBytes?.() ?? 256 * 1024 * 1024, 'pull');
  }
}

/** Hugging Face's resolve endpoint publishes the LFS sha256 as X-Linked-Etag. */
function publishedSha(headers: { get(name: string): string | null }): string | undefined {
  for (const h of ['x-linked-etag', 'x-sha256']) {
    const v = headers.get(h)?.replace(/"/g, '').toLowerCase();
    if (v && /^[0-9a-f]{64}$/.test(v)) return v;
  }
  return undefined;
}

/** A path under the managed directory; a source naming anything outside it is refused. */
function inside(modelsDir: string, relPath: string): string {
  return containedPath(modelsDir, relPath);
}

function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Bytes still to fetch, as far as the source published sizes; what `.partial` files already hold is not counted. */
async function remainingBytes(files: PullFile[], targets: string[]): Promise<number> {
  let left = 0;
  for (let i = 0; i < files.length; i++) {
    const have = await stat(`${targets[i]}.partial`).then(
      (s) => s.size,
      () => 0,
    );
    left += Math.max(0, (files[i]!.size ?? 0) - have);
  }
  return left;
}

export function managedModelsDir(modelsDirs: string[], cwd: string): string {
  return resolve(cwd, modelsDirs[0] ?? join('data', 'models'));
}
