import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { DigestCache } from './digest.js';
import { readGguf, type GgufInfo } from './gguf.js';
import { normalizeModelName } from './names.js';
import { isProjector, pairProjector } from './projector.js';
import { manifestPath, readManifest } from '../models/manifest.js';
import { isGoTemplate } from '../models/modelfile.js';

export type { GgufInfo } from './gguf.js';
export { normalizeModelName } from './names.js';

export interface CatalogModel {
  /** Normalised name, e.g. "tiny:latest". */
  name: string;
  path: string;
  /** 'managed': pulled, copied or created through the API (data_dir/models.json). */
  source: 'config' | 'discovered' | 'managed';
  aliases: string[];
  args: string[];
  options: Record<string, unknown>;
  keepAlive?: string | number | undefined;
  ctxSize?: number | undefined;
  parallel?: number | undefined;
  queueSize?: number | undefined;
  pinned: boolean;
  embedding: boolean;
  mmproj?: string | undefined;
  system?: string | undefined;
  template?: string | undefined;
  size: number;
  modifiedAt: Date;
  digest: string;
  gguf: GgufInfo;
}

export interface CatalogOptions {
  config: Config;
  /** The config file's directory: relative model paths resolve against it. */
  baseDir: string;
  /** Working directory: models_dirs and data_dir resolve against it. */
  cwd: string;
}

/** Ollama's capability names, derived from the header and config. */
export function capabilities(m: CatalogModel): string[] {
  const caps: string[] = [];
  if (!m.embedding) caps.push('completion');
  if (m.embedding) caps.push('embedding');
  const template = m.template ?? m.gguf.chatTemplate ?? '';
  if (!m.embedding && /tools|tool_call/.test(template)) caps.push('tools');
  if (m.gguf.hasFim) caps.push('insert');
  if (m.mmproj) caps.push('vision');
  if (/<think>|enable_thinking|reasoning_content/.test(template)) caps.push('thinking');
  return caps;
}

async function* ggufFiles(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) yield* ggufFiles(full);
    else if (e.name.toLowerCase().endsWith('.gguf')) yield full;
  }
}

/** Which models exist: configured entries plus every *.gguf in the model directories. */
export class Catalog {
  private models = new Map<string, CatalogModel>();
  private byAlias = new Map<string, string>();
  warnings: string[] = [];
  private readonly digests: DigestCache;

  constructor(private opts: CatalogOptions) {
    this.digests = new DigestCache({ file: join(resolve(opts.cwd, opts.config.data_dir), 'digests.json') });
  }

  /** Swaps in a new config (hot reload); call refresh() afterwards. */
  reconfigure(opts: CatalogOptions): void {
    this.opts = opts;
  }

  get dataDir(): string {
    return resolve(this.opts.cwd, this.opts.config.data_dir);
  }

  get modelDirs(): string[] {
    return this.opts.config.models_dirs.map((d) => resolve(this.opts.cwd, d));
  }

  async refresh(): Promise<void> {
    const { config, baseDir } = this.opts;
    const warnings: string[] = [];
    const models = new Map<string, CatalogModel>();
    const byAlias = new Map<string, string>();

    const describe = async (path: string, configuredAs?: string): Promise<{ gguf: GgufInfo; size: number; modifiedAt: Date; digest: string } | undefined> => {
      try {
        const [info, st, digest] = await Promise.all([readGguf(path), stat(path), this.digests.digest(path)]);
        return { gguf: info, size: st.size, modifiedAt: st.mtime, digest };
      } catch (err) {
        warnings.push(configuredAs ? `model ${configuredAs} (${path}): ${(err as Error).message}` : `skipping ${path}: ${(err as Error).message}`);
        return undefined;
      }
    };
    const siblingProjector = async (path: string): Promise<string | undefined> => {
      const dir = dirname(path);
      try {
        const hit = pairProjector(path, await readdir(dir));
        return hit ? join(dir, hit) : undefined;
      } catch {
        return undefined;
      }
    };

    const manifest = await readManifest(manifestPath(this.dataDir)).catch((err: Error) => {
      warnings.push(`${manifestPath(this.dataDir)}: ${err.message}`);
      return { models: {}, hidden: {} as Record<string, string> };
    });
    // A file with a config entry, or pulled under a managed name, is listed under that name only.
    const claimed = new Set([
      ...Object.values(config.models).map((e) => resolve(baseDir, e.path)),
      ...Object.values(manifest.models).filter((e) => e.kind === 'pulled').map((e) => e.path),
    ]);

    for (const dir of this.modelDirs) {
      for await (const path of ggufFiles(dir)) {
        if (isProjector(path) || claimed.has(path)) continue;
        const d = await describe(path);
        if (!d) continue;
        const name = normalizeModelName(basename(path).replace(/\.gguf$/i, ''));
        models.set(name, {
          name, path, source: 'discovered', aliases: [], args: [], options: {}, pinned: false,
          embedding: isEmbedding(d.gguf), mmproj: await siblingProjector(path), ...d,
        });
      }
    }

    for (const [rawName, entry] of Object.entries(config.models)) {
      const name = normalizeModelName(rawName);
      const path = resolve(baseDir, entry.path);
      const d = await describe(path, name);
      if (!d) continue;
      models.set(name, {
        name,
        path,
        source: 'config',
        aliases: entry.aliases.map(normalizeModelName),
        args: entry.args,
        options: entry.options,
        keepAlive: entry.keep_alive,
        ctxSize: entry.ctx_size,
        parallel: entry.parallel,
        queueSize: entry.queue_size,
        pinned: entry.pinned,
        embedding: entry.embedding ?? isEmbedding(d.gguf),
        mmproj: entry.mmproj ? resolve(baseDir, entry.mmproj) : undefined,
        system: entry.system,
        template: entry.template,
        ...d,
      });
    }
    for (const [name, e] of Object.entries(manifest.models)) {
      const d = await describe(e.path);
      if (!d) continue;
      models.set(name, {
        name, path: e.path, source: 'managed', aliases: [], pinned: false,
        // A derived model with its own Jinja template gets it as llama-server's chat template.
        args: e.template && !isGoTemplate(e.template) ? ['--chat-template', e.template] : [],
        options: e.options ?? {}, embedding: e.embedding ?? isEmbedding(d.gguf),
        mmproj: e.mmproj ?? (e.kind === 'pulled' ? await siblingProjector(e.path) : undefined),
        system: e.system, template: e.template, ...d,
      });
    }
    for (const [name, path] of Object.entries(manifest.hidden)) if (models.get(name)?.path === path) models.delete(name);
    for (const m of models.values()) {
      for (const a of m.aliases) {
        byAlias.set(a, m.name);
        // A configured alias outranks a discovered file of the same name.
        if (models.get(a)?.source === 'discovered') models.delete(a);
      }
    }
    this.models = models;
    this.byAlias = byAlias;
    this.warnings = warnings;
  }

  list(): CatalogModel[] {
    return [...this.models.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  resolve(name: string): CatalogModel | undefined {
    const n = normalizeModelName(name);
    return this.models.get(n) ?? this.models.get(this.byAlias.get(n) ?? '');
  }
}

function isEmbedding(info: GgufInfo): boolean {
  // llama.cpp writes a pooling type only for models meant to produce embeddings.
  return info.metadata[`${info.architecture}.pooling_type`] !== undefined || /bert|embed/i.test(info.architecture) || /embed/i.test(info.name ?? '');
}
