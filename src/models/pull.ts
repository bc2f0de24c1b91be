import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { normalizeModelName } from '../catalog/names.js';
import { ChecksumMismatch, InsufficientStorage, NotFound, UpstreamError } from '../errors.js';
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
  /** Re-reads the catalogue once a model is in place. */
  refresh(): Promise<void>;
  /** Free bytes kept in reserve beyond the file itself. */
  reserveBytes?: number;
  /** Download attempts per pull; each one resumes where the previous one stopped. */
  attempts?: number;
}

/** A running pull; later callers for the same model subscribe to it instead of downloading twice. */
export interface PullJob {
  /** Settles once the source is resolved (rejects with 404 and the like before any byte moves). */
  resolved: Promise<PullSource>;
  done: Promise<void>;
  subscribe(listener: (p: PullProgress) => void): () => void;
}

const PROGRESS_INTERVAL_MS = 100;

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

  pull(reference: string): PullJob {
    const name = normalizeModelName(reference);
    const existing = this.jobs.get(name);
    if (existing) return existing;
    const listeners = new Set<(p: PullProgress) => void>();
    const controller = new AbortController();
    const emit = (p: PullProgress): void => {
      for (const l of listeners) l(p);
    };
    const resolved = this.resolve(reference, controller.signal);
    const done = resolved.then((src) => this.fetchInto(name, src, emit, controller.signal));
    const job: PullJob = {
      resolved,
      done,
      subscribe: (listener) => {
        listeners.add(listener);
        return () => {
          listeners.delete(listener);
          // Nobody is waiting any more: stop; the .partial file stays for a later resume.
          if (listeners.size === 0) controller.abort();
        };
      },
    };
    this.jobs.set(name, job);
    const forget = (): void => {
      if (this.jobs.get(name) === job) this.jobs.delete(name);
    };
    done.then(forget, forget);
    resolved.catch(() => undefined);
    return job;
  }

  private async resolve(reference: string, signal: AbortSignal): Promise<PullSource> {
    if (isHfReference(reference)) return resolveHf(reference, this.deps.huggingfaceUrl(), signal);
    if (isUrlReference(reference)) return resolveUrl(reference);
    throw new NotFound(`pull model manifest: "${reference}" is not a Hugging Face reference (hf.co/{user}/{repo}:{quant}) or a URL to a .gguf file; Corral cannot pull from the Ollama registry`);
  }

  private async fetchInto(name: string, src: PullSource, emit: (p: PullProgress) => void, signal: AbortSignal): Promise<void> {
    const modelsDir = this.deps.modelsDir();
    const target = resolve(modelsDir, src.relPath);
    if (relative(modelsDir, target).startsWith('..')) throw new NotFound(`refusing to write outside ${modelsDir}`);
    const manifest = this.deps.manifest();
    const known = (await manifest.read()).models[name];
    const present = await stat(target).then((s) => s.isFile(), () => false);
    if (!(present && known?.path === target && (!src.sha256 || known.sha256 === src.sha256))) {
      const sha = await this.download(src, target, emit, signal);
      src = { ...src, sha256: sha };
    }
    let mmproj: string | undefined;
    if (src.projector) {
      mmproj = resolve(modelsDir, src.projector.relPath);
      if (!(await stat(mmproj).then((s) => s.isFile(), () => false))) await this.download(src.projector, mmproj, emit, signal);
    }
    emit({ status: 'writing manifest' });
    await manifest.update((data) => {
      data.models[name] = { kind: 'pulled', path: target, source: src.reference, sha256: src.sha256, mmproj, createdAt: new Date().toISOString() };
      delete data.hidden[name];
    });
    await this.deps.refresh();
    emit({ status: 'success' });
  }

  /** Downloads to `<target>.partial`, resuming with Range, verifies, then renames into place. */
  private async download(src: PullFile, target: string, emit: (p: PullProgress) => void, signal: AbortSignal): Promise<string> {
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial`;
    const digest = `sha256:${src.sha256 ?? createHash('sha256').update(src.url).digest('hex')}`;
    const status = `pulling ${digest.slice(7, 19)}`;
    let expectedSha = src.sha256;
    let total = src.size;
    let lastError: unknown;
    const attempts = this.deps.attempts ?? 3;
    for (let attempt = 0; attempt < attempts; attempt++) {
      let have = await stat(partial).then((s) => s.size, () => 0);
      if (total !== undefined && have === total && have > 0) break;
      const res = await fetchOrThrow(src.url, have > 0 ? { range: `bytes=${have}-` } : {}, signal);
      if (res.status === 416) {
        // The partial file is not a prefix we can extend: start over.
        await rm(partial, { force: true });
        continue;
      }
      if (res.status === 404) throw new NotFound(`pull: ${src.url} not found (404)`);
      if (!res.ok) throw new UpstreamError(`pull: ${src.url} answered ${res.status}`, 502);
      if (res.status !== 206) have = 0;
      const length = Number(res.headers.get('content-length') ?? NaN);
      total ??= Number.isFinite(length) ? have + length : undefined;
      expectedSha ??= publishedSha(res.headers);
      if (attempt === 0 || have === 0) await this.checkSpace(dirname(target), (total ?? 0) - have);
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
        lastError = new UpstreamError(`pull: download of ${src.url} interrupted: ${(err as Error).message}`, 502, { cause: err });
      } finally {
        await fh.close();
      }
    }
    if (lastError) throw lastError;

    emit({ status: 'verifying sha256 digest' });
    const actual = await sha256File(partial);
    if (expectedSha && actual !== expectedSha) {
      await rm(partial, { force: true });
      throw new ChecksumMismatch(`pull: sha256 mismatch for ${src.url}: expected ${expectedSha}, got ${actual}; the download was discarded`);
    }
    await rename(partial, target);
    return actual;
  }

  private async checkSpace(dir: string, needed: number): Promise<void> {
    if (needed <= 0) return;
    const fs = await statfs(dir);
    const free = fs.bavail * fs.bsize;
    const reserve = this.deps.reserveBytes ?? 256 * 1024 * 1024;
    if (free < needed + reserve) {
      throw new InsufficientStorage(`pull: not enough disk space in ${dir}: ${needed} bytes needed (plus ${reserve} reserved), ${free} free`);
    }
  }
}

async function fetchOrThrow(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { headers, signal, redirect: 'follow' });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new UpstreamError(`pull: cannot reach ${url}: ${(err as Error).message}`, 502, { cause: err });
  }
}

/** Hugging Face's resolve endpoint publishes the LFS sha256 as X-Linked-Etag. */
function publishedSha(headers: Headers): string | undefined {
  for (const h of ['x-linked-etag', 'x-sha256']) {
    const v = headers.get(h)?.replace(/"/g, '').toLowerCase();
    if (v && /^[0-9a-f]{64}$/.test(v)) return v;
  }
  return undefined;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function managedModelsDir(modelsDirs: string[], cwd: string): string {
  return resolve(cwd, modelsDirs[0] ?? join('data', 'models'));
}
