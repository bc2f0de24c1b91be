import { mkdir, rename, rm } from 'node:fs/promises';
import { sha256File } from '../catalog/digest.js';
import { ChecksumMismatch, NotFound, UpstreamError } from '../errors.js';
import { assertSpace } from '../fs/free-space.js';
import { sharedJob, type PullJob, type PullProgress } from '../models/pull.js';
import { GuardedFetch, type FetchPolicy } from '../net/guarded-fetch.js';
import { DEFAULT_HOST, type OllamaName } from '../ollama-store/names.js';
import {
  MANIFEST_MEDIA_TYPE,
  manifestDigests,
  parseManifest,
  type Layer,
  type Manifest,
} from '../ollama-store/store.js';
import type { Stores } from '../ollama-store/stores.js';
import { blobInTarget } from '../ollama-store/layer-writer.js';
import { downloadBlob } from './blob-download.js';
import { SharedBlobs } from './shared-blobs.js';

export interface RegistryPullerDeps {
  stores(): Stores;
  /** Where names on the default host (registry.ollama.ai) are pulled from. */
  registryUrl(): string;
  policy(insecure: boolean): FetchPolicy;
  /** Free bytes a pull must leave on the disk. */
  reserveBytes(): number;
  refresh(): Promise<void>;
  /** Download attempts per blob and pull; each resumes where the previous one stopped. */
  attempts?: number;
}

interface Resolved {
  manifest: Manifest;
  bytes: Buffer;
  base: string;
  http: GuardedFetch;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Pulls `[host/][namespace/]model[:tag]` over the registry's OCI distribution API into the write
 * store, in Ollama's layout and with Ollama's progress lines: every blob sha256-verified before it
 * gets its name, partial blobs resumed with Range, blobs already present (in any store) not fetched.
 */
export class RegistryPuller {
  private readonly jobs = new Map<string, PullJob>();
  private readonly blobs = new SharedBlobs();
  private readonly commits = new Map<string, Promise<void>>();

  constructor(private readonly deps: RegistryPullerDeps) {}

  pull(name: OllamaName, insecure: boolean): PullJob {
    const target = this.deps.stores().target;
    const key = `${target.root}\0${target.manifestFile(name)}`;
    return sharedJob(this.jobs, key, (emit, signal) => {
      const resolved = this.resolve(name, insecure, signal);
      const done = resolved.then((r) => this.fetchLayers(name, r, emit, signal).finally(() => r.http.close()));
      return { resolved, done };
    });
  }

  private baseUrl(name: OllamaName, insecure: boolean): string {
    if (name.host.toLowerCase() === DEFAULT_HOST) return this.deps.registryUrl().replace(/\/+$/, '');
    return `${name.scheme ?? (insecure ? 'http' : 'https')}://${name.host}`;
  }

  /** Fetches the manifest: 404 in Ollama's words for a name the registry does not have. */
  private async resolve(name: OllamaName, insecure: boolean, signal: AbortSignal): Promise<Resolved> {
    const http = new GuardedFetch(this.deps.policy(insecure));
    try {
      const base = this.baseUrl(name, insecure);
      const url = `${base}/v2/${name.namespace}/${name.model}/manifests/${name.tag}`;
      const { response } = await http.fetch(url, { headers: { accept: MANIFEST_MEDIA_TYPE }, signal });
      if (response.status === 404) {
        await response.body?.cancel().catch(() => undefined);
        throw new NotFound('pull model manifest: file does not exist');
      }
      const bytes = Buffer.from(await response.arrayBuffer());
      if (!response.ok)
        throw new UpstreamError(`pull model manifest: ${response.status}: ${bytes.toString('utf8', 0, 500)}`, 502);
      if (bytes.length > MAX_MANIFEST_BYTES) throw new UpstreamError('pull model manifest: manifest too large', 502);
      let manifest: Manifest;
      try {
        manifest = parseManifest(bytes);
      } catch (err) {
        throw new UpstreamError(`pull model manifest: ${(err as Error).message}`, 502);
      }
      return { manifest, bytes, base, http };
    } catch (err) {
      await http.close();
      throw err;
    }
  }

  private async fetchLayers(
    name: OllamaName,
    r: Resolved,
    emit: (p: PullProgress) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const stores = this.deps.stores();
    const target = stores.target;
    const layers = uniqueLayers(r.manifest);
    const missing: Layer[] = [];
    for (const layer of layers) {
      if (await this.present(stores, layer.digest)) {
        emit(progressLine(layer.digest, layer.size, layer.size));
      } else missing.push(layer);
    }
    await mkdir(target.blobsDir, { recursive: true });
    const needed = missing.reduce((n, l) => n + l.size, 0);
    await assertSpace(target.blobsDir, needed, this.deps.reserveBytes(), 'pull');
    for (const layer of missing) {
      const partial = `${target.blobFile(layer.digest)}.partial`;
      const url = `${r.base}/v2/${name.namespace}/${name.model}/blobs/${layer.digest}`;
      const src = { url, digest: layer.digest, size: layer.size, partial };
      await this.blobs.join(
        partial,
        (progress, sig) => downloadBlob(r.http, src, progress, sig, this.deps.attempts ?? 3),
        (p) => emit(progressLine(layer.digest, p.total, p.completed)),
        signal,
      );
    }
    emit({ status: 'verifying sha256 digest' });
    for (const layer of missing) await this.commit(target.blobFile(layer.digest), layer.digest);
    emit({ status: 'writing manifest' });
    const previous = await target.read(name).catch(() => undefined);
    await target.writeManifest(name, r.bytes);
    if (previous) {
      const kept = new Set(manifestDigests(r.manifest));
      const unused = manifestDigests(previous.manifest).filter((d) => !kept.has(d));
      if (unused.length) {
        emit({ status: 'removing unused layers' });
        await target.removeUnreferenced(unused);
      }
    }
    await this.deps.refresh();
    emit({ status: 'success' });
  }

  /** In the write store already, or brought there from another store (blobs never change). */
  private async present(stores: Stores, digest: string): Promise<boolean> {
    return (await blobInTarget(stores, digest)) !== undefined;
  }

  /** Verifies a downloaded partial and gives it its name; a mismatch discards it. Once per blob at a time. */
  private commit(blob: string, digest: string): Promise<void> {
    let running = this.commits.get(blob);
    if (!running) {
      running = verifyAndPlace(blob, digest).finally(() => this.commits.delete(blob));
      this.commits.set(blob, running);
    }
    return running;
  }
}

async function verifyAndPlace(blob: string, digest: string): Promise<void> {
  const partial = `${blob}.partial`;
  const got = await sha256File(partial).catch(async (err: NodeJS.ErrnoException) => {
    // Another pull placed it between its download and this check.
    if (err.code === 'ENOENT' && (await sha256File(blob).catch(() => undefined)) === digest) return digest;
    throw err;
  });
  if (got !== digest) {
    await rm(partial, { force: true });
    throw new ChecksumMismatch(`digest mismatch, file must be downloaded again: want ${digest}, got ${got}`);
  }
  await rename(partial, blob).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

function progressLine(digest: string, total: number, completed: number): PullProgress {
  return { status: `pulling ${digest.slice(7, 19)}`, digest, total, completed };
}

/** Layers then the config, each digest once (a config may share a digest with a layer). */
function uniqueLayers(m: Manifest): Layer[] {
  const seen = new Set<string>();
  return [...m.layers, ...(m.config.digest ? [m.config] : [])].filter((l) => !seen.has(l.digest) && seen.add(l.digest));
}
