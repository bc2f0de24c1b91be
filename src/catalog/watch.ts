import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import { coalesced } from '../config/watch.js';
import { watchStores } from '../ollama-store/watch.js';
import type { Catalog } from './catalog.js';

export interface CatalogWatcher {
  /** The directories watched, to tell on a config reload whether they changed. */
  roots: string[];
  close(): Promise<void>;
}

/** A file still arriving under a temporary name; only the final name is a model. */
const TEMPORARY = /\.(part|partial|tmp|crdownload|download)$/i;

/**
 * Calls `onChange` (debounced, never overlapping) when a GGUF appears in, changes in or leaves one of
 * `dirs`: a user copying a model in while Corral runs. An add or change is reported once the file has
 * stopped growing for `settleMs`; the catalogue itself lists a file only when it holds every tensor its
 * header names, so a copy that pauses is still not announced half-done.
 */
export function watchModelDirs(
  dirs: string[],
  onChange: () => Promise<void>,
  { debounceMs = 200, settleMs = 400 } = {},
): { ready: Promise<void>; close(): Promise<void> } {
  const runner = coalesced(onChange, debounceMs);
  const watcher: FSWatcher = watch(dirs, {
    ignoreInitial: true,
    depth: 8,
    awaitWriteFinish: { stabilityThreshold: settleMs, pollInterval: Math.min(100, settleMs) },
    ignored: (path, stats) => stats?.isFile() === true && (!/\.gguf$/i.test(path) || TEMPORARY.test(path)),
  });
  watcher
    .on('add', runner.schedule)
    .on('change', runner.schedule)
    .on('unlink', runner.schedule)
    .on('addDir', runner.schedule)
    .on('unlinkDir', runner.schedule);
  return {
    // Until chokidar's first scan is done, a new file counts as one it found there and is not reported.
    ready: new Promise((resolve) => watcher.once('ready', () => resolve())),
    async close() {
      await watcher.close();
      await runner.close();
    },
  };
}

/** Every directory a catalogue's models come from: its Ollama-layout stores and its models directories. */
export function catalogRoots(catalog: Catalog): string[] {
  return [...catalog.stores.all.map((st) => st.root), ...catalog.modelDirs];
}

/**
 * Watches what the catalogue lists, refreshing it on a change and then calling `afterRefresh`:
 * Corral's own store and the first models directory (where pulls land) are created first, so a
 * fresh install has somewhere to copy models to; other directories are watched if they exist.
 */
export async function watchCatalog(catalog: Catalog, afterRefresh: () => void = () => {}): Promise<CatalogWatcher> {
  const { own, all } = catalog.stores;
  await mkdir(own.manifestsDir, { recursive: true });
  await mkdir(own.blobsDir, { recursive: true });
  const [first] = catalog.modelDirs;
  if (first) await mkdir(first, { recursive: true });
  const refresh = async (): Promise<void> => {
    await catalog.refresh();
    afterRefresh();
  };
  const present = (dirs: string[]): string[] => dirs.filter((d) => existsSync(d));
  const stores = watchStores(present(all.map((st) => st.root)), refresh);
  const models = present(catalog.modelDirs);
  const files = models.length ? watchModelDirs(models, refresh) : undefined;
  await Promise.all([stores.ready, files?.ready]);
  return {
    roots: catalogRoots(catalog),
    async close() {
      await Promise.all([stores.close(), files?.close()]);
    },
  };
}
