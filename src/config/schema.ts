import { Type, type Static } from '@sinclair/typebox';

/**
 * The whole configuration. Every field has a default so an empty file (or no file) is a working config.
 * Durations are strings like "5m", "300s", "1h" or plain numbers of seconds (see ./duration.ts).
 */
const Duration = (fallback?: string) =>
  Type.Union([Type.String(), Type.Number()], fallback === undefined ? {} : { default: fallback });

export const ModelEntrySchema = Type.Object(
  {
    /** GGUF file; relative paths are resolved against the directory of the config file. */
    path: Type.String({ minLength: 1 }),
    aliases: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /** Extra llama-server arguments for this model, appended after the global ones. */
    args: Type.Array(Type.String(), { default: [] }),
    /** Default Ollama `options` for requests to this model (request options win). */
    options: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
    keep_alive: Type.Optional(Duration()),
    ctx_size: Type.Optional(Type.Integer({ minimum: 0 })),
    parallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    queue_size: Type.Optional(Type.Integer({ minimum: 0 })),
    pinned: Type.Boolean({ default: false }),
    embedding: Type.Optional(Type.Boolean()),
    mmproj: Type.Optional(Type.String()),
    system: Type.Optional(Type.String()),
    template: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 11434 }),
        /** Reported by /api/version; clients gate features on it. */
        ollama_version: Type.String({ default: '0.12.6' }),
        /** Seconds the gateway waits for in-flight requests on SIGTERM before stopping children. */
        drain_timeout: Duration('30s'),
        body_limit: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 }),
        /** Let llama-server download http(s) image URLs from /v1 requests (off: the gateway host would fetch any address a client names). */
        remote_media: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    llama_server: Type.Object(
      {
        binary: Type.Optional(Type.String()),
        /** Arguments for every model, before the model's own. */
        args: Type.Array(Type.String(), { default: [] }),
        startup_timeout: Duration('120s'),
        stop_timeout: Duration('10s'),
        /**
         * Each model's log file is kept under this size (bytes or "20MB"; 0 = unbounded): the content
         * moves to `<name>.log.1`, replacing the previous one.
         */
        log_max_size: Type.Union([Type.Integer({ minimum: 0 }), Type.String()], { default: '20MB' }),
        transport: Type.Union([Type.Literal('auto'), Type.Literal('unix'), Type.Literal('tcp')], {
          default: 'auto',
          description:
            'How Corral reaches its llama-server children. "unix": each listens on a Unix socket in a directory ' +
            'only this user can enter, so no other local user or process can bypass Corral. "tcp": loopback TCP ' +
            'with a random API key per child. "auto": unix where a private socket directory can be made, else tcp. ' +
            'Takes effect after a restart of Corral.',
        }),
        pass_env: Type.Array(Type.String(), {
          default: [],
          description:
            'Children inherit only the variables llama-server and GPU runtimes read (PATH, HOME, LANG, LC_*, CUDA_*, ' +
            "HIP_*, GGML_*, LLAMA_*, ...), never Corral's secrets. Name more here: NAME, or PREFIX* for all that " +
            'start with PREFIX.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Directories scanned for *.gguf files; relative to the working directory. */
    models_dirs: Type.Array(Type.String(), { default: ['data/models'] }),
    data_dir: Type.String({ default: 'data' }),
    logs_dir: Type.String({ default: 'logs' }),
    defaults: Type.Object(
      {
        keep_alive: Duration('5m'),
        ctx_size: Type.Integer({ minimum: 0, default: 4096 }),
        parallel: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
        queue_size: Type.Integer({ minimum: 0, default: 64 }),
      },
      { additionalProperties: false, default: {} },
    ),
    scheduler: Type.Object(
      {
        /** 0 = no limit. */
        max_loaded_models: Type.Integer({ minimum: 0, default: 0 }),
        /** Bytes, a size string like "16GB", or "auto" (a fraction of RAM). */
        memory_budget: Type.Union([Type.Integer({ minimum: 0 }), Type.String()], { default: 'auto' }),
        /** Fraction of total RAM used when memory_budget is "auto". */
        memory_fraction: Type.Number({ minimum: 0.05, maximum: 1, default: 0.8 }),
        /** Exclusive swap groups: loading one member unloads the others. */
        groups: Type.Record(Type.String(), Type.Array(Type.String()), { default: {} }),
        /** How long a load waits for busy models to go idle so they can be evicted before answering 503. */
        eviction_wait: Duration('60s'),
        /**
         * Start a model while the llama-server it evicted is still exiting. "auto": only when
         * `llama-server --list-devices` lists no GPU, because a GPU load needs the VRAM the old
         * process still holds; in RAM the kernel frees it as the process exits.
         */
        overlap_eviction: Type.Union([Type.Literal('auto'), Type.Boolean()], { default: 'auto' }),
        /** Restarts of crashed pinned models, and the circuit breaker for crash-looping ones. */
        restart_backoff: Type.Object(
          {
            initial: Duration('1s'),
            max: Duration('60s'),
            /** Consecutive failures after which a model is no longer restarted (requests get its error). */
            max_restarts: Type.Integer({ minimum: 1, default: 5 }),
            /** A model that stayed up this long, or failed this long ago, starts counting afresh. */
            reset_after: Duration('5m'),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    models: Type.Record(Type.String(), ModelEntrySchema, { default: {} }),
    auth: Type.Object(
      {
        mode: Type.Union([Type.Literal('loopback-open'), Type.Literal('required'), Type.Literal('off')], {
          default: 'loopback-open',
        }),
        /** Needed to run with mode "off" on a non-loopback address. */
        force_insecure: Type.Boolean({ default: false }),
        trusted_proxies: Type.Array(Type.String(), { default: [] }),
        session_idle: Duration('12h'),
        session_absolute: Duration('7d'),
      },
      { additionalProperties: false, default: {} },
    ),
    store: Type.Object(
      {
        /** SQLite file; relative to the working directory. */
        path: Type.String({ default: 'data/corral.db' }),
        request_log_retention: Duration('30d'),
        audit_log_retention: Duration('365d'),
      },
      { additionalProperties: false, default: {} },
    ),
    pull: Type.Object(
      {
        huggingface_url: Type.String({ default: 'https://huggingface.co' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type ModelEntry = Static<typeof ModelEntrySchema>;
