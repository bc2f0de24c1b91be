import { readFile, stat } from 'node:fs/promises';
import type { OllamaStore, StoredManifest } from './store.js';

/** Ollama's layer media types (server/images.go). */
export const MEDIA = {
  model: 'application/vnd.ollama.image.model',
  projector: 'application/vnd.ollama.image.projector',
  adapter: 'application/vnd.ollama.image.adapter',
  params: 'application/vnd.ollama.image.params',
  system: 'application/vnd.ollama.image.system',
  template: 'application/vnd.ollama.image.template',
  /** The template's older name, still in some manifests. */
  prompt: 'application/vnd.ollama.image.prompt',
  license: 'application/vnd.ollama.image.license',
  messages: 'application/vnd.ollama.image.messages',
} as const;

/** The config blob (model.ConfigV2): what `ollama list` shows as details. */
export interface ModelConfig {
  model_format?: string;
  model_family?: string;
  model_families?: string[];
  model_type?: string;
  file_type?: string;
}

export interface StoreMessage {
  role: string;
  content: string;
}

/** What a manifest says about the model it names, with every referenced blob found on disk. */
export interface StoreModelSpec {
  /** The GGUF llama-server is given. */
  modelPath: string;
  modelDigest: string;
  /** The model layer's `from`: Ollama's parent_model. */
  parentModel?: string | undefined;
  projectors: string[];
  adapters: string[];
  params: Record<string, unknown>;
  system?: string | undefined;
  template?: string | undefined;
  license: string[];
  messages: StoreMessage[];
  config: ModelConfig;
}

/** Text layers are small; a larger one is not what its media type claims. */
const MAX_TEXT_LAYER = 4 * 1024 * 1024;

export class MissingBlob extends Error {}

/**
 * Reads a manifest's layers the way Ollama's GetModel does: the GGUF, projectors, adapters, default
 * options, system prompt, template, licenses and messages. Any blob it names must exist, so a model
 * is never offered with a part missing.
 */
export async function readModelSpec(store: OllamaStore, stored: StoredManifest): Promise<StoreModelSpec> {
  const spec: StoreModelSpec = {
    modelPath: '',
    modelDigest: '',
    projectors: [],
    adapters: [],
    params: {},
    license: [],
    messages: [],
    config: {},
  };
  const blob = async (digest: string, what: string): Promise<string> => {
    const file = store.blobFile(digest);
    const ok = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!ok) throw new MissingBlob(`${what} blob ${digest} is missing from ${store.blobsDir}`);
    return file;
  };
  const text = async (digest: string, what: string): Promise<string> => {
    const file = await blob(digest, what);
    if ((await stat(file)).size > MAX_TEXT_LAYER) throw new Error(`${what} layer ${digest} is too large`);
    return readFile(file, 'utf8');
  };
  const json = async (digest: string, what: string): Promise<unknown> => {
    try {
      return JSON.parse(await text(digest, what)) as unknown;
    } catch (err) {
      if (err instanceof MissingBlob) throw err;
      throw new Error(`${what} layer ${digest} is not valid JSON: ${(err as Error).message}`);
    }
  };
  for (const layer of stored.manifest.layers) {
    await readLayer(spec, layer, { blob, text, json });
  }
  if (stored.manifest.config.digest) {
    const cfg = await json(stored.manifest.config.digest, 'config');
    if (cfg && typeof cfg === 'object') spec.config = cfg as ModelConfig;
  }
  if (!spec.modelPath) throw new Error('manifest has no model layer (application/vnd.ollama.image.model)');
  return spec;
}

interface Readers {
  blob(digest: string, what: string): Promise<string>;
  text(digest: string, what: string): Promise<string>;
  json(digest: string, what: string): Promise<unknown>;
}

async function readLayer(
  spec: StoreModelSpec,
  layer: StoredManifest['manifest']['layers'][number],
  r: Readers,
): Promise<void> {
  switch (layer.mediaType) {
    case MEDIA.model:
      // llama-server finds a split model's shards by their file names, which blobs do not have.
      if (spec.modelPath) throw new Error('manifest has several model layers (a split GGUF); Corral serves one');
      spec.modelPath = await r.blob(layer.digest, 'model');
      spec.modelDigest = layer.digest;
      spec.parentModel = layer.from;
      return;
    case MEDIA.projector:
      spec.projectors.push(await r.blob(layer.digest, 'projector'));
      return;
    case MEDIA.adapter:
      spec.adapters.push(await r.blob(layer.digest, 'adapter'));
      return;
    case MEDIA.params: {
      const p = await r.json(layer.digest, 'params');
      if (p && typeof p === 'object' && !Array.isArray(p)) spec.params = p as Record<string, unknown>;
      return;
    }
    case MEDIA.system:
      spec.system = await r.text(layer.digest, 'system');
      return;
    case MEDIA.template:
    case MEDIA.prompt:
      spec.template = await r.text(layer.digest, 'template');
      return;
    case MEDIA.license:
      spec.license.push(await r.text(layer.digest, 'license'));
      return;
    case MEDIA.messages: {
      const m = await r.json(layer.digest, 'messages');
      if (Array.isArray(m)) spec.messages = m.filter(isMessage);
      return;
    }
    default:
    // Other media types (Ollama's safetensors tensors, drafts, embeds) are not served by llama-server.
  }
}

function isMessage(m: unknown): m is StoreMessage {
  const x = m as Partial<StoreMessage> | null;
  return typeof x?.role === 'string' && typeof x.content === 'string';
}
