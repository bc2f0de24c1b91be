import { resolve } from 'node:path';
import type { ModelEntry } from '../config/schema.js';
import type { ManagedEntry } from '../models/manifest.js';
import { isGoTemplate } from '../models/modelfile.js';
import type { CatalogModel } from './catalog.js';
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

export function isEmbedding(info: GgufInfo): boolean {
  // llama.cpp writes a pooling type only for models meant to produce embeddings.
  return (
    info.metadata[`${info.architecture}.pooling_type`] !== undefined ||
    /bert|embed/i.test(info.architecture) ||
    /embed/i.test(info.name ?? '')
  );
}
