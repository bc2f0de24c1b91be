import { resolve } from 'node:path';
import type { ModelEntry } from '../config/schema.js';
import type { ManagedEntry } from '../models/manifest.js';
import { isGoTemplate } from '../models/modelfile.js';
import type { CatalogModel } from './model.js';
import type { GgufInfo } from './gguf.js';
import { normalizeModelName } from './names.js';

/** What a model's files say about it: header, total size, newest mtime and digest. */
export interface ModelFiles {
  gguf: GgufInfo;
  size: number;
  modifiedAt: Date;
  digest: string;
}

/** A `*.gguf` found in a models directory: served under its file name with default settings. */
export function discoveredModel(name: string, path: string, d: ModelFiles, mmproj: string | undefined): CatalogModel {
  return {
    name,
    path,
    source: 'discovered',
    aliases: [],
    args: [],
    options: {},
    pinned: false,
    embedding: isEmbedding(d.gguf),
    mmproj,
    ...d,
  };
}

/** A `models:` entry of the config file; its relative paths resolve against the config's directory. */
export function configModel(
  name: string,
  entry: ModelEntry,
  path: string,
  baseDir: string,
  d: ModelFiles,
): CatalogModel {
  return {
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
    rpc: entry.rpc,
    ...d,
  };
}

/** A model pulled, copied or created through the API (data_dir/models.json). */
export function managedModel(name: string, e: ManagedEntry, d: ModelFiles, mmproj: string | undefined): CatalogModel {
  return {
    name,
    path: e.path,
    source: 'managed',
    aliases: [],
    pinned: false,
    // A derived model with its own Jinja template gets it as llama-server's chat template.
    args: [
      ...(e.adapters ?? []).flatMap((a) => ['--lora', a]),
      ...(e.template && !isGoTemplate(e.template) ? ['--chat-template', e.template] : []),
    ],
    goTemplate: e.template && isGoTemplate(e.template) && !d.gguf.chatTemplate ? e.template : undefined,
    license: e.license,
    messages: e.messages,
    options: e.options ?? {},
    embedding: e.embedding ?? isEmbedding(d.gguf),
    mmproj,
    system: e.system,
    template: e.template,
    ...d,
  };
}

/** llama.cpp's pooling types, by the number a GGUF's `<arch>.pooling_type` holds. */
const POOLING = ['none', 'mean', 'cls', 'last', 'rank'] as const;
export type Pooling = (typeof POOLING)[number];

/** The pooling type a GGUF declares, if any. */
export function poolingOf(info: GgufInfo): Pooling | undefined {
  const n = info.metadata[`${info.architecture}.pooling_type`];
  return typeof n === 'number' ? POOLING[n] : undefined;
}

export function isEmbedding(info: GgufInfo): boolean {
  // llama.cpp writes a pooling type only for models meant to produce embeddings (or, "rank", to rerank).
  const pooling = poolingOf(info);
  if (pooling === 'rank') return false;
  return pooling !== undefined || /bert|embed/i.test(info.architecture) || /embed/i.test(info.name ?? '');
}

/**
 * A reranker scores documents against a query (llama-server `--rerank`): its GGUF says pooling type
 * "rank", or its configured args start it as one.
 */
export function reranks(m: { gguf: GgufInfo; args: readonly string[] }): boolean {
  return poolingOf(m.gguf) === 'rank' || m.args.some((a) => a === '--rerank' || a === '--reranking');
}
