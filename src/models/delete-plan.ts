import { basename } from 'node:path';
import type { CatalogModel } from '../catalog/catalog.js';
import { shardPaths } from '../catalog/split.js';
import { isInside } from '../fs/contained.js';
import type { ManifestData } from './manifest.js';

/**
 * What deleting a model does, decided in one place for /api/delete and the Pull page (which says it
 * before and after). Only what Corral itself put on disk is ever removed: files it downloaded into
 * its models directory, and manifests and blobs in an Ollama store it may write.
 */
export type DeletePlan =
  /** Corral's own files: removed (they may be none, when another model still uses them). */
  | { action: 'remove'; files: string[]; summary: string }
  /** A manifest in a writable Ollama-layout store; blobs no other model uses go with it. */
  | { action: 'store'; summary: string }
  /** The operator's file: never deleted; `why` says where it comes from and how to remove it. */
  | { action: 'keep'; why: string };

/** Every file of a model recorded by `path`: its shards when it is split, else the file itself. */
function modelFiles(path: string): string[] {
  try {
    return shardPaths(path);
  } catch {
    return [path];
  }
}

/**
 * The files that go with managed entry `name` of `data` (a pull, copy or create): those Corral
 * downloaded into `managedDir` that no other entry of `data` still uses. Call it on the manifest
 * as it will be once the entry is gone.
 */
export function ownedFiles(entry: ManifestData['models'][string], data: ManifestData, managedDir: string): string[] {
  if (!entry.source) return [];
  const inside = (p: string): boolean => isInside(managedDir, p);
  const unused = (p: string | undefined): p is string =>
    p !== undefined && inside(p) && !Object.values(data.models).some((e) => e.path === p || e.mmproj === p);
  // A split model is recorded by its shard 1; the other shards go with it.
  return [entry.path, entry.mmproj].filter(unused).flatMap(modelFiles).filter(inside);
}

const names = (files: string[]): string => files.map((f) => basename(f)).join(', ');

export function deletePlan(m: CatalogModel, data: ManifestData, managedDir: string): DeletePlan {
  if (m.source === 'ollama') {
    const { store } = m.ollama!;
    if (!store.writable)
      return {
        action: 'keep',
        why:
          `in the Ollama store at ${store.root}, which Corral only reads ` +
          '(ollama_store_writable: true lets it delete there)',
      };
    return { action: 'store', summary: `removes its manifest from ${store.root} and the blobs no other model uses` };
  }
  const entry = data.models[m.name];
  if (entry) {
    const rest: ManifestData = { ...data, models: { ...data.models } };
    delete rest.models[m.name];
    const files = ownedFiles(entry, rest, managedDir);
    const summary = files.length
      ? `removes ${names(files)} from disk`
      : entry.source && isInside(managedDir, entry.path)
        ? 'removes the name only: its file is still used by another model'
        : `removes the name only: the file ${entry.path} is not Corral's`;
    return { action: 'remove', files, summary };
  }
  if (m.source === 'config')
    return { action: 'keep', why: 'from the config file: remove its entry there (Corral never deletes its file)' };
  return {
    action: 'keep',
    why:
      `a file in your models directory (${m.path}): delete or move it yourself and the list follows; ` +
      'Corral never deletes files it did not download',
  };
}
