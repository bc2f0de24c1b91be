import { isGoTemplate } from '../models/modelfile.js';
import { readModelSpec, type StoreModelSpec } from '../ollama-store/layers.js';
import { displayName } from '../ollama-store/names.js';
import type { OllamaStore, StoredManifest } from '../ollama-store/store.js';
import { isEmbedding } from './entries.js';
import type { CatalogModel } from './model.js';
import { fileTypeName, type GgufInfo } from './gguf.js';
import { normalizeModelName } from './names.js';
import { readGgufShards } from './split.js';

export interface StoreListing {
  models: CatalogModel[];
  /** Normalised name → why it is not served (a missing blob, an unreadable manifest). */
  broken: Map<string, string>;
  warnings: string[];
}

/**
 * Every model in the Ollama-layout stores, under the name `ollama list` shows and with its digest (the
 * sha256 of the manifest bytes). A manifest that cannot be served is reported, never fatal.
 */
export async function listStoreModels(stores: OllamaStore[]): Promise<StoreListing> {
  const out: StoreListing = { models: [], broken: new Map(), warnings: [] };
  for (const store of stores) {
    for (const n of await store.names()) {
      const shown = displayName(n);
      const name = normalizeModelName(shown);
      try {
        const stored = await store.read(n);
        if (!stored) continue;
        const spec = await readModelSpec(store, stored);
        out.models.push(await storeModel(store, stored, spec, shown));
        out.broken.delete(name);
      } catch (err) {
        const why = (err as Error).message;
        out.broken.set(name, why);
        out.warnings.push(`Ollama model ${shown} in ${store.root} is broken and not served: ${why}`);
      }
    }
  }
  return out;
}

async function storeModel(
  store: OllamaStore,
  stored: StoredManifest,
  spec: StoreModelSpec,
  shown: string,
): Promise<CatalogModel> {
  const gguf = withConfigDetails(await readGgufShards([spec.modelPath]), spec);
  const template = spec.template;
  const jinja = template !== undefined && !isGoTemplate(template);
  const args = [...spec.adapters.flatMap((a) => ['--lora', a]), ...(jinja ? ['--chat-template', template] : [])];
  return {
    name: normalizeModelName(shown),
    displayName: shown,
    path: spec.modelPath,
    source: 'ollama',
    aliases: [],
    args,
    options: spec.params,
    pinned: false,
    embedding: isEmbedding(gguf),
    mmproj: spec.projectors[0],
    system: spec.system,
    template,
    // llama-server applies the GGUF's own Jinja template; Ollama's Go template only stands in for a missing one.
    goTemplate: template !== undefined && !jinja && !gguf.chatTemplate ? template : undefined,
    license: spec.license.join('\n'),
    messages: spec.messages,
    parentModel: spec.parentModel,
    size: stored.size,
    modifiedAt: stored.modifiedAt,
    digest: `sha256:${stored.digest}`,
    gguf,
    ollama: { store, name: stored.name, modelDigest: spec.modelDigest, manifest: stored.manifest },
  };
}

/** The config blob's family and quantization name what Ollama shows; the header fills what it lacks. */
function withConfigDetails(gguf: GgufInfo, spec: StoreModelSpec): GgufInfo {
  const c = spec.config;
  return {
    ...gguf,
    architecture: gguf.architecture || c.model_family || '',
    quantization: c.file_type || gguf.quantization || fileTypeName(gguf.fileType ?? -1),
    parameterSize: c.model_type || gguf.parameterSize,
  };
}
