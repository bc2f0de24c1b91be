import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { sha256File } from '../catalog/digest.js';
import { BadRequest } from '../errors.js';
import type { OllamaName } from './names.js';
import { manifestDigests, parseManifest, type Layer, type OllamaStore } from './store.js';
import type { Stores } from './stores.js';

/** A layer and the progress line Ollama prints for it (`creating new layer …` / `using existing layer …`). */
export interface NewLayer {
  layer: Layer;
  status: string;
}

/** Ollama's NewLayer: content-addressed, written once, reported as new or existing. */
export async function writeLayer(store: OllamaStore, content: string | Buffer, mediaType: string): Promise<NewLayer> {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const layer = { mediaType, digest, size: bytes.length };
  if (await store.hasBlob(digest)) return { layer, status: `using existing layer ${digest}` };
  await mkdir(store.blobsDir, { recursive: true });
  const file = store.blobFile(digest);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes, { mode: 0o644 });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return { layer, status: `creating new layer ${digest}` };
}

/**
 * The path of a blob in the write store, brought there from another store when only that one has it:
 * hard-linked (blobs never change, and a link survives the other tool deleting its copy), or copied
 * when the stores are on different filesystems. Undefined when no store has it.
 */
export async function blobInTarget(stores: Stores, digest: string): Promise<string | undefined> {
  const target = stores.target;
  if (await target.hasBlob(digest)) return target.blobFile(digest);
  for (const s of stores.all) {
    if (s !== target && (await s.hasBlob(digest))) return placeBlob(target, s.blobFile(digest), digest, true);
  }
  return undefined;
}

/**
 * A file from outside the stores (a configured or discovered model's projector) as a blob of `store`;
 * returns its digest. Copied, not linked: the owner may rewrite the file in place, and a blob must not
 * change (a copy-on-write clone where the filesystem has them). `created`: the store did not have it.
 */
export async function adoptFile(store: OllamaStore, path: string): Promise<{ digest: string; created: boolean }> {
  const digest = await sha256File(path);
  if (await store.hasBlob(digest)) return { digest, created: false };
  await placeBlob(store, path, digest, false);
  return { digest, created: true };
}

/** `source` under the blob name of `digest`, complete or not at all; `linkable`: `source` is a blob itself. */
async function placeBlob(store: OllamaStore, source: string, digest: string, linkable: boolean): Promise<string> {
  const file = store.blobFile(digest);
  await mkdir(store.blobsDir, { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const copy = (): Promise<void> => copyFile(source, tmp, constants.COPYFILE_FICLONE);
  try {
    await (linkable ? link(source, tmp).catch(copy) : copy());
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return file;
}

/** blobInTarget, or 400 telling the client to upload it first. */
export async function requireBlob(stores: Stores, digest: string): Promise<string> {
  const file = await blobInTarget(stores, digest);
  if (!file) throw new BadRequest(`blob ${digest} not found: upload it first with POST /api/blobs/${digest}`);
  return file;
}

/** Ollama's manifest encoding (json.Encoder: fields in struct order, a trailing newline). */
export function encodeManifest(config: Layer, layers: Layer[]): string {
  const enc = (l: Layer): Layer => ({
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.size,
    ...(l.from ? { from: l.from } : {}),
    ...(l.name ? { name: l.name } : {}),
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: enc(config),
    layers: layers.map(enc),
  };
  return `${JSON.stringify(manifest)}\n`;
}

/**
 * Ollama's CopyModel: the same manifest bytes (so the same digest) under another name in the write
 * store, with every blob it needs brought there first.
 */
export async function copyManifest(
  stores: Stores,
  from: OllamaStore,
  source: OllamaName,
  dest: OllamaName,
): Promise<void> {
  const bytes = await readFile(from.manifestFile(source));
  for (const digest of manifestDigests(parseManifest(bytes))) {
    if (!(await blobInTarget(stores, digest))) throw new BadRequest(`blob ${digest} of the source model is missing`);
  }
  await stores.target.writeManifest(dest, bytes);
}
