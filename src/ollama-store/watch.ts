import { join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { coalesced } from '../config/watch.js';

export interface StoreWatcher {
  /** Resolves once the first scan is done: only changes after it are reported. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Calls `onChange` (debounced, never overlapping) when a manifest appears, changes or goes, or a blob
 * appears or goes, in any of the stores: another Ollama writing its store, or a user copying files in.
 * Blob writes in progress are not events (only their add and removal are), so a large download does
 * not cause a refresh per chunk.
 */
export function watchStores(roots: string[], onChange: () => Promise<void>, debounceMs = 200): StoreWatcher {
  const runner = coalesced(onChange, debounceMs);
  const schedule = runner.schedule;
  const relevant = (path: string): boolean =>
    roots.some((root) => {
      const rel = relative(root, path);
      return rel === '' || rel === 'manifests' || rel === 'blobs' || rel.startsWith(`manifests${sep}`) || isBlob(rel);
    });
  const watcher: FSWatcher = watch(
    roots.map((r) => join(r)),
    {
      ignoreInitial: true,
      depth: 5,
      // Partial downloads and temporary manifests come and go on every write.
      ignored: (path: string) => !relevant(path) || /\.(tmp|partial)$/.test(path),
    },
  );
  watcher
    .on('add', schedule)
    .on('unlink', schedule)
    .on('addDir', schedule)
    .on('unlinkDir', schedule)
    .on('change', (path) => {
      if (!isBlob(relativeToAny(roots, path))) schedule();
    });
  return {
    // chokidar never reports ready for an empty list of paths.
    ready: roots.length ? new Promise((resolve) => watcher.once('ready', () => resolve())) : Promise.resolve(),
    async close() {
      await watcher.close();
      await runner.close();
    },
  };
}

function isBlob(rel: string): boolean {
  return rel.startsWith(`blobs${sep}`);
}

function relativeToAny(roots: string[], path: string): string {
  for (const r of roots) {
    const rel = relative(r, path);
    if (!rel.startsWith('..')) return rel;
  }
  return path;
}
