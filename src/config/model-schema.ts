import { Type } from '@sinclair/typebox';
import { Duration } from './schema-types.js';

/** One entry of `models:` (see ./schema.ts for how descriptions become the configuration reference). */
export const ModelEntrySchema = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      description:
        'The GGUF file (shard 1 of a split model). A relative path is resolved against the directory of the config file.',
      examples: ['../data/models/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf'],
    }),
    aliases: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Other names clients may use for this model. A name without a tag gets `:latest`.',
      examples: [['qwen2.5']],
    }),
    args: Type.Array(Type.String(), {
      default: [],
      description:
        'Extra llama-server arguments for this model, appended after `llama_server.args` (llama-server keeps the last occurrence of a flag, so these win).',
      examples: [['--flash-attn', 'auto']],
    }),
    options: Type.Record(Type.String(), Type.Unknown(), {
      default: {},
      description:
        "Default Ollama `options` for requests to this model (also applied to `/v1` requests); a request's own options win.",
      examples: [{ temperature: 0.7, num_predict: 512 }],
    }),
    keep_alive: Type.Optional(
      Duration(undefined, {
        description: 'How long the model stays loaded after its last request; overrides `defaults.keep_alive`.',
        examples: ['30m'],
      }),
    ),
    ctx_size: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          "Context per slot in tokens (Ollama's `num_ctx`); overrides `defaults.ctx_size`. 0 uses the model's trained context length.",
        examples: [8192],
      }),
    ),
    parallel: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 256,
        description: 'Concurrent requests (llama-server `--parallel` slots); overrides `defaults.parallel`.',
        examples: [2],
      }),
    ),
    queue_size: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Requests that may wait for a slot before new ones get 503; overrides `defaults.queue_size`.',
        examples: [16],
      }),
    ),
    pinned: Type.Boolean({
      default: false,
      description: 'Load at start, never unload or evict, and restart after a crash (see `scheduler.restart_backoff`).',
    }),
    embedding: Type.Optional(
      Type.Boolean({
        description:
          'Serve embeddings (`--embeddings`, with the pooling type in the GGUF, else mean) instead of generation. ' +
          'Unset: detected from the GGUF (a pooling type in its metadata, or a BERT or "embed" architecture or ' +
          'name). A GGUF with pooling type "rank" is a reranker and starts with `--rerank`. Other models embed ' +
          'too, through a second child of the same file started for embeddings.',
        examples: [true],
      }),
    ),
    mmproj: Type.Optional(
      Type.String({
        description:
          'Vision projector GGUF for this model (llama-server `--mmproj`), relative to the config file. A configured model has none unless this is set.',
        examples: ['../data/models/mmproj-Qwen2.5-VL-3B-f16.gguf'],
      }),
    ),
    system: Type.Optional(
      Type.String({
        description: 'System prompt used when a request brings none.',
        examples: ['You are a concise assistant.'],
      }),
    ),
    rpc: Type.Optional(
      Type.Union([Type.Literal('auto'), Type.Array(Type.String({ pattern: '^[^\\s,]+:[0-9]+$' }), { minItems: 1 })], {
        description:
          'Run the model across llama.cpp RPC workers (llama-server `--rpc`): "auto" uses every live worker of ' +
          'the fleet (`corral worker`), a list names host:port addresses. Its memory need is split across them.',
        examples: ['auto', ['10.0.0.7:50052', '10.0.0.8:50052']],
      }),
    ),
    template: Type.Optional(
      Type.String({
        description:
          'Template reported by `/api/show` (and read for tool support) in place of the GGUF\'s own chat template. It does not change the template llama-server applies: set that with `args: ["--chat-template", ...]`.',
      }),
    ),
  },
  { additionalProperties: false, description: 'One configured model.' },
);
