import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BadRequest } from '../errors.js';
import { containedPath } from '../fs/contained.js';
import { nameFromSegments, nameSegments, parseDigest, sameName, type OllamaName } from './names.js';

/** One entry of a manifest's `layers` (or its `config`), as the registry and Ollama write it. */
export interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  from?: string | undefined;
  name?: string | undefined;
}

export interface Manifest {
  schemaVersion: number;
  mediaType: string;
  config: Layer;
  layers: Layer[];
}

export const MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
export const CONFIG_MEDIA_TYPE = 'application/vnd.docker.container.image.v1+json';

/** A manifest as found on disk: Ollama's digest of a model is the sha256 of these exact bytes. */
export interface StoredManifest {
  name: OllamaName;
  file: string;
  manifest: Manifest;
  digest: string;
  size: number;
  modifiedAt: Date;
}

/** The parts of a manifest that matter, checked: a registry or a file can hold anything. */
export function parseManifest(bytes: Buffer | string): Manifest {
  const raw = JSON.parse(String(bytes)) as Partial<Manifest>;
  const layer = (l: unknown, where: string): Layer => {
    const x = l as Partial<Layer> | null;
    const digest = typeof x?.digest === 'string' ? parseDigest(x.digest) : undefined;
    if (!x || typeof x.mediaType !== 'string' || !digest || typeof x.size !== 'number' || x.size < 0)
      throw new Error(`${where}: expected {mediaType, digest: "sha256:<hex>", size}`);
    return { mediaType: x.mediaType, digest, size: x.size, from: x.from, name: x.name };
  };
  if (!Array.isArray(raw.layers)) throw new Error('manifest has no "layers" array');
  return {
    schemaVersion: Number(raw.schemaVersion ?? 2),
    mediaType: String(raw.mediaType ?? MANIFEST_MEDIA_TYPE),
    config: raw.config?.digest ? layer(raw.config, 'config') : { mediaType: '', digest: '', size: 0 },
    layers: raw.layers.map((l, i) => layer(l, `layers[${i}]`)),
  };
}

/** Every digest a manifest references (layers and config). */
export function manifestDigests(m: Manifest): string[] {
  return [...m.layers.map((l) => l.digest), ...(m.config.digest ? [m.config.digest] : [])];
}

/**
 * A models directory laid out as Ollama lays it out: `manifests/<host>/<namespace>/<model>/<tag>`
 * and `blobs/sha256-<hex>`. Every path is derived from a validated name or digest and checked to stay
 * inside the directory.
 */
export class OllamaStore {
  constructor(
    readonly root: string,
    readonly writable: boolean,
  ) {}

  get manifestsDir(): string {
    return join(this.root, 'manifests');
  }

  get blobsDir(): string {
    return join(this.root, 'blobs');
  }

  manifestFile(name: OllamaName): string {
    return containedPath(this.manifestsDir, ...nameSegments(name));
  }

  blobFile(digest: string): string {
    const d = parseDigest(digest);
    if (!d) throw new BadRequest('invalid digest format');
    return containedPath(this.blobsDir, d.replace(':', '-'));
  }

  async hasBlob(digest: string): Promise<boolean> {
    return stat(this.blobFile(digest)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async read(name: OllamaName): Promise<StoredManifest | undefined> {
    const file = this.manifestFile(name);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
        return undefined;
      throw err;
    }
    const st = await stat(file);
    const manifest = parseManifest(bytes);
    return {
      name,
      file,
      manifest,
      digest: createHash('sha256').update(bytes).digest('hex'),
      // What `ollama list` shows: every layer and the config, not only the GGUF.
      size: [...manifest.layers, manifest.config].reduce((sum, l) => sum + l.size, 0),
      modifiedAt: st.mtime,
    };
  }

  /** The names of every manifest file four levels below `manifests/` (Ollama's Manifests glob). */
  async names(): Promise<OllamaName[]> {
    const out: OllamaName[] = [];
    const walk = async (dir: string, segments: string[]): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const next = [...segments, e.name];
        if (segments.length < 3 && e.isDirectory()) await walk(join(dir, e.name), next);
        else if (segments.length === 3 && e.isFile()) {
          const n = nameFromSegments(next);
          if (n) out.push(n);
        }
      }
    };
    await walk(this.manifestsDir, []);
    return out;
  }

  /** Finds a stored name case-insensitively, keeping the case it was stored with. */
  async find(name: OllamaName): Promise<OllamaName | undefined> {
    return (await this.names()).find((n) => sameName(n, name));
  }

  /** Writes the manifest bytes atomically (temp file + rename), so a reader never sees half of one. */
  async writeManifest(name: OllamaName, bytes: Buffer | string): Promise<void> {
    this.assertWritable();
    const file = this.manifestFile(name);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, bytes, { mode: 0o644 });
    await rename(tmp, file);
  }

  /**
   * Removes a manifest, then every blob it referenced that no other manifest in this store references
   * (Ollama's RemoveLayers), then the directories left empty.
   */
  async remove(name: OllamaName): Promise<void> {
    this.assertWritable();
    const own = await this.read(name);
    if (!own) return;
    await rm(own.file, { force: true });
    await this.pruneEmptyDirs(dirname(own.file));
    await this.removeUnreferenced(manifestDigests(own.manifest));
  }

  /** Deletes those of `digests` that no manifest in this store references any more. */
  async removeUnreferenced(digests: string[]): Promise<void> {
    this.assertWritable();
    const inUse = new Set<string>();
    for (const n of await this.names()) {
      // An unreadable manifest still holds its blobs if it can be read at all; one that cannot holds none.
      const other = await this.read(n).catch(() => undefined);
      for (const d of other ? manifestDigests(other.manifest) : []) inUse.add(d);
    }
    for (const d of new Set(digests)) if (!inUse.has(d)) await rm(this.blobFile(d), { force: true });
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(`${this.manifestsDir}/`); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
    }
  }

  private assertWritable(): void {
    if (!this.writable) throw new Error(`the Ollama store at ${this.root} is read-only`);
  }
}
