import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';

/**
 * A model Corral itself defined: pulled from a source, copied (an alias) or created (derived, with
 * its own defaults). Each entry snapshots what it needs (file, system, template, options), so
 * deleting the model it came from never breaks it.
 */
export interface ManagedEntry {
  kind: 'pulled' | 'copy' | 'create';
  /** GGUF file; relative paths are relative to the manifest's directory. */
  path: string;
  /** Where a pulled file came from (the reference as given, or a URL). */
  source?: string | undefined;
  /** The model it was copied or created from. */
  parent?: string | undefined;
  sha256?: string | undefined;
  system?: string | undefined;
  template?: string | undefined;
  options?: Record<string, unknown> | undefined;
  embedding?: boolean | undefined;
  mmproj?: string | undefined;
  /** LoRA adapter blobs (`--lora`). */
  adapters?: string[] | undefined;
  license?: string | undefined;
  messages?: { role: string; content: string }[] | undefined;
  createdAt: string;
}

export interface ManifestData {
  models: Record<string, ManagedEntry>;
  /** Configured or discovered models removed with /api/delete: name → path they had. Files are kept. */
  hidden: Record<string, string>;
}

export function manifestPath(dataDir: string): string {
  return join(dataDir, 'models.json');
}

/** Reads the manifest; a missing file is an empty manifest. Paths come back absolute. */
export async function readManifest(file: string): Promise<ManifestData> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { models: {}, hidden: {} };
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<ManifestData>;
  const models: Record<string, ManagedEntry> = {};
  for (const [name, e] of Object.entries(parsed.models ?? {})) {
    models[name] = {
      ...e,
      path: resolve(dirname(file), e.path),
      mmproj: e.mmproj ? resolve(dirname(file), e.mmproj) : undefined,
    };
  }
  return { models, hidden: parsed.hidden ?? {} };
}

/**
 * Serialises read-modify-write cycles on one manifest file and writes atomically (temp file +
 * rename), so a crash mid-write never leaves a truncated manifest behind.
 */
export class Manifest {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string) {}

  read(): Promise<ManifestData> {
    return readManifest(this.file);
  }

  update<T>(fn: (data: ManifestData) => T | Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      const data = await readManifest(this.file);
      const result = await fn(data);
      await this.write(data);
      return result;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(data: ManifestData): Promise<void> {
    const base = dirname(this.file);
    const rel = (p: string): string => {
      const r = relative(base, p);
      return r.startsWith('..') || isAbsolute(r) ? p : r;
    };
    const models: Record<string, ManagedEntry> = {};
    for (const [name, e] of Object.entries(data.models))
      models[name] = { ...e, path: rel(e.path), mmproj: e.mmproj ? rel(e.mmproj) : undefined };
    await mkdir(base, { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ models, hidden: data.hidden }, null, 2)}\n`);
    await rename(tmp, this.file);
  }
}
