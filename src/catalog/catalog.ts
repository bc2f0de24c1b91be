import { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { DigestCache } from './digest.js';
import { GgufError } from './gguf.js';
import { byCodeUnit, normalizeModelName } from './names.js';
import { isProjector, pairProjector } from './projector.js';
import {
  IncompleteSplit,
  combineDigests,
  modelStem,
  parseSplitName,
  readGgufShards,
  splitPath,
  statShards,
} from './split.js';
import { manifestPath, readManifest, type ManagedEntry } from '../models/manifest.js';
import { resolveStores, type Stores } from '../ollama-store/stores.js';
import type { CatalogModel } from './model.js';
import { listStoreModels } from './ollama-models.js';
import { configModel, discoveredModel, managedModel, type ModelFiles, reranks } from './entries.js';

export { isEmbedding, poolingOf, reranks } from './entries.js';

export type { GgufInfo } from './gguf.js';
export type { CatalogModel } from './model.js';
export { normalizeModelName } from './names.js';

export interface CatalogOptions {
  config: Config;
  /** The config file's directory: relative model paths resolve against it. */
  baseDir: string;
  /** Working directory: models_dirs and data_dir resolve against it. */
  cwd: string;
  /** For OLLAMA_MODELS, where `ollama_store: auto` looks first. */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * Ollama's capability names, derived from the header and config, plus "rerank" (no Ollama name) for
 * a reranker, which neither completes nor embeds.
 */
export function capabilities(m: CatalogModel): string[] {
  if (reranks(m)) return ['rerank'];
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

/**
 * One path per model in `dir`: a split set is represented by its shard 1, even when only later shards
 * are there, so a set missing its first file is reported as incomplete rather than ignored.
 */
async function modelFiles(dir: string): Promise<string[]> {
  const out = new Set<string>();
  for await (const path of ggufFiles(dir)) {
    const split = parseSplitName(path);
    out.add(split ? splitPath(split.prefix, 0, split.count) : path);
  }
  return [...out];
}

export interface CatalogEvents {
  /** A refresh found a different set of models or warnings (the dashboard redraws). */
  changed: [];
}

/** The vision projector beside a model's file, if there is one. */
async function siblingProjector(path: string): Promise<string | undefined> {
  const dir = dirname(path);
  try {
    const hit = pairProjector(path, await readdir(dir));
    return hit ? join(dir, hit) : undefined;
  } catch {
    return undefined;
  }
}

/** Which models exist: configured entries plus every *.gguf in the model directories. */
export class Catalog extends EventEmitter<CatalogEvents> {
  private models = new Map<string, CatalogModel>();
  private sorted: readonly CatalogModel[] | undefined;
  private scanning: Promise<void> | undefined;
  private nextScan: Promise<void> | undefined;
  private byAlias = new Map<string, string>();
  /** Names of split models with shards missing → why, so using one says more than "not found". */
  private incomplete = new Map<string, string>();
  warnings: string[] = [];
  /** Told about each warning that the previous refresh did not have (the gateway logs them). */
  onWarning: ((warning: string) => void) | undefined;
  private readonly digests: DigestCache;

  /** What the last refresh found, to tell whether the next one changed anything. */
  private signature = '';

  constructor(private opts: CatalogOptions) {
    super();
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

  /** The Ollama-layout stores under the current config. */
  get stores(): Stores {
    return resolveStores(this.opts.config, this.opts.cwd, this.opts.env ?? process.env);
  }

  /**
   * Re-reads every source. Refreshes never overlap: one that started earlier could finish last and put
   * back a file a later one saw go (or drop one it saw arrive). A refresh asked for while one runs
   * waits for it and runs once more after it, shared by everyone who asked meanwhile.
   */
  refresh(): Promise<void> {
    if (this.nextScan) return this.nextScan;
    if (!this.scanning) {
      this.scanning = this.scan().finally(() => {
        this.scanning = undefined;
      });
      return this.scanning;
    }
    this.nextScan = this.scanning
      .catch(() => {})
      .then(() => {
        this.nextScan = undefined;
        return this.refresh();
      });
    return this.nextScan;
  }

  private async scan(): Promise<void> {
    const { config, baseDir } = this.opts;
    const warnings: string[] = [];
    const models = new Map<string, CatalogModel>();
    const incomplete = new Map<string, string>();

    const describe = async (
      path: string,
      name: string,
      { configured = false, whole = false } = {},
    ): Promise<ModelFiles | undefined> => {
      try {
        return await this.describeFiles(path, whole);
      } catch (err) {
        const why = (err as Error).message;
        if (err instanceof IncompleteSplit) incomplete.set(name, why);
        warnings.push(configured ? `model ${name} (${path}): ${why}` : `skipping ${path}: ${why}`);
        return undefined;
      }
    };

    const manifest = await readManifest(manifestPath(this.dataDir)).catch((err: Error) => {
      warnings.push(`${manifestPath(this.dataDir)}: ${err.message}`);
      return { models: {}, hidden: {} as Record<string, string> };
    });
    // A file with a config entry, or pulled under a managed name, is listed under that name only.
    const configured = new Map(Object.entries(config.models).map(([n, e]) => [resolve(baseDir, e.path), n]));
    const claimed = new Set([
      ...configured.keys(),
      ...Object.values(manifest.models)
        .filter((e) => e.kind === 'pulled')
        .map((e) => e.path),
    ]);
    /** Adds `m`; a discovered file of the same name gives way, and the log and Models page say so. */
    const add = (m: CatalogModel, what: string): void => {
      const prev = models.get(m.name);
      if (prev?.source === 'discovered' && prev.path !== m.path)
        warnings.push(
          `"${m.name}" is ${what} (${m.path}); ` +
            `the file ${prev.path} has the same name and is not listed (rename it to list it)`,
        );
      models.set(m.name, m);
    };

    for (const dir of this.modelDirs) {
      for (const path of await modelFiles(dir)) {
        if (isProjector(path)) continue;
        const name = normalizeModelName(modelStem(path));
        const entry = configured.get(path);
        if (entry !== undefined && normalizeModelName(entry) !== name)
          warnings.push(
            `${path} is listed as "${normalizeModelName(entry)}" (models.${entry} in the config), not as "${name}"`,
          );
        if (claimed.has(path)) continue;
        // A file in a models directory may still be arriving (a copy in progress): it is listed once whole.
        const d = await describe(path, name, { whole: true });
        if (!d) continue;
        models.set(name, discoveredModel(name, path, d, await siblingProjector(path)));
      }
    }

    const ollama = await listStoreModels(this.stores.all);
    warnings.push(...ollama.warnings);
    for (const [name, why] of ollama.broken) incomplete.set(name, why);
    for (const m of ollama.models) add(m, `a model in the Ollama store ${m.ollama?.store.root ?? ''}`.trim());

    for (const [rawName, entry] of Object.entries(config.models)) {
      const name = normalizeModelName(rawName);
      const path = resolve(baseDir, entry.path);
      const d = await describe(path, name, { configured: true });
      if (!d) continue;
      add(configModel(name, entry, path, baseDir, d), `the config entry models.${rawName}`);
    }
    for (const [name, e] of Object.entries(manifest.models)) {
      const d = await describe(e.path, name);
      if (!d) continue;
      const projector = e.mmproj ?? (e.kind === 'pulled' ? await siblingProjector(e.path) : undefined);
      add(managedModel(name, e, d, projector), `a model ${MADE[e.kind]} through the API`);
    }
    for (const [name, path] of Object.entries(manifest.hidden))
      if (models.get(name)?.path === path) models.delete(name);
    this.publish(models, resolveAliases(models, warnings), incomplete, warnings);
  }

  /** Makes a refresh's findings current, logs the new warnings and tells listeners when anything changed. */
  private publish(
    models: Map<string, CatalogModel>,
    byAlias: Map<string, string>,
    incomplete: Map<string, string>,
    warnings: string[],
  ): void {
    this.models = models;
    this.sorted = undefined;
    this.byAlias = byAlias;
    this.incomplete = incomplete;
    const before = new Set(this.warnings);
    this.warnings = warnings;
    for (const w of warnings) if (!before.has(w)) this.onWarning?.(w);
    const signature = JSON.stringify([[...models.values()].map((m) => [m.name, m.path, m.digest]), warnings]);
    if (signature !== this.signature) {
      this.signature = signature;
      this.emit('changed');
    }
  }

  /** Header, total size, newest mtime and digest of a model's file or of all its shards. */
  private async describeFiles(path: string, whole: boolean): Promise<ModelFiles> {
    const files = await statShards(path);
    const gguf = await readGgufShards(files.paths);
    // Checked before hashing: a partial file's digest would be wrong and is not worth the reading.
    if (whole && gguf.missingBytes > 0)
      throw new GgufError('shorter than its header says (still being copied, or cut short); listed once complete');
    // One shard after another: hashing several multi-GB files at once only makes the disk seek.
    const digests: string[] = [];
    for (const p of files.paths) digests.push(await this.digests.digest(p));
    return { gguf, size: files.size, modifiedAt: files.modifiedAt, digest: combineDigests(digests) };
  }

  /** Sorted by name. The same array until the next refresh, so what is derived from it can be cached by identity. */
  list(): readonly CatalogModel[] {
    return (this.sorted ??= Object.freeze([...this.models.values()].sort((a, b) => byCodeUnit(a.name, b.name))));
  }

  resolve(name: string): CatalogModel | undefined {
    const n = normalizeModelName(name);
    return this.models.get(n) ?? this.models.get(this.byAlias.get(n) ?? '');
  }

  /** Why a model that is not listed cannot be used, when the catalogue knows (a split set with shards missing). */
  unavailable(name: string): string | undefined {
    return this.incomplete.get(normalizeModelName(name));
  }
}

const MADE: Record<ManagedEntry['kind'], string> = { pulled: 'pulled', copy: 'copied', create: 'created' };

/**
 * Every alias → the model it names. A configured alias outranks a discovered file of the same name,
 * which is dropped (and a warning says so).
 */
function resolveAliases(models: Map<string, CatalogModel>, warnings: string[]): Map<string, string> {
  const byAlias = new Map<string, string>();
  for (const m of models.values()) {
    for (const a of m.aliases) {
      byAlias.set(a, m.name);
      const shadowed = models.get(a);
      if (shadowed?.source !== 'discovered') continue;
      models.delete(a);
      warnings.push(
        `"${a}" is an alias of the config entry "${m.name}"; ` +
          `the file ${shadowed.path} has the same name and is not listed (rename it to list it)`,
      );
    }
  }
  return byAlias;
}
