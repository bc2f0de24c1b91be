import type { OllamaName } from '../ollama-store/names.js';
import type { Manifest, OllamaStore } from '../ollama-store/store.js';
import type { GgufInfo } from './gguf.js';

/** One model of the catalogue, whichever source it came from (the entries' builders make them). */
export interface CatalogModel {
  /** Normalised name, e.g. "tiny:latest". */
  name: string;
  /** The GGUF file llama-server is given: for a split model, shard 1 (it opens the others itself). */
  path: string;
  /** What `ollama list` would show: the name with its case kept (Ollama-store models only). */
  displayName?: string | undefined;
  /**
   * 'managed': pulled, copied or created through the API (data_dir/models.json); 'ollama': a manifest in
   * an Ollama-layout store (an existing Ollama install, or Corral's own under data_dir).
   */
  source: 'config' | 'discovered' | 'managed' | 'ollama';
  aliases: string[];
  args: string[];
  options: Record<string, unknown>;
  keepAlive?: string | number | undefined;
  ctxSize?: number | undefined;
  parallel?: number | undefined;
  queueSize?: number | undefined;
  pinned: boolean;
  embedding: boolean;
  mmproj?: string | undefined;
  system?: string | undefined;
  template?: string | undefined;
  /** An Ollama Go template Corral renders itself, because the GGUF has no chat template of its own. */
  goTemplate?: string | undefined;
  license?: string | undefined;
  /** Messages a model was created with (Ollama's MESSAGE), shown by /api/show. */
  messages?: { role: string; content: string }[] | undefined;
  /** The model an Ollama-store model was created from (Ollama's parent_model). */
  parentModel?: string | undefined;
  /** Where an Ollama-store model's manifest lives. */
  ollama?: { store: OllamaStore; name: OllamaName; modelDigest: string; manifest: Manifest } | undefined;
  /** llama.cpp RPC workers the model runs across: every live one ("auto") or these host:port addresses. */
  rpc?: 'auto' | string[] | undefined;
  /** Bytes on disk, summed over all shards of a split model. */
  size: number;
  modifiedAt: Date;
  /** sha256 of the file; for a split model, of its shards' digests (see combineDigests). */
  digest: string;
  gguf: GgufInfo;
}
