import { Type, type Static } from '@sinclair/typebox';
import { AlertsSchema, OperationLimitsSchema } from './alerts-schema.js';
import { FleetSchema, WorkerSchema } from './fleet-schema.js';
import { ModelEntrySchema } from './model-schema.js';
import { Duration, Size } from './schema-types.js';

export { ModelEntrySchema } from './model-schema.js';

/**
 * The whole configuration. Every field has a default so an empty file (or no file) is a working config.
 * Each key carries a `description` (and where it helps, `examples`): docs/configuration.md and
 * config/corral.example.yaml are generated from them (`npm run docs`), and a test fails on a key
 * without one. `title` names the kind of value the reference shows for unions such as durations.
 */
export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({
          default: '127.0.0.1',
          description:
            'Address to listen on. Beyond loopback, clients need API tokens (see `auth.mode`). `--host` and `CORRAL_HOST` override it.',
          examples: ['0.0.0.0'],
        }),
        port: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: 11434,
          description:
            "TCP port. Ollama's port by default, so existing clients work unchanged. `--port` and `CORRAL_PORT` override it.",
        }),
        ollama_version: Type.String({
          default: '0.12.6',
          description: 'Version reported by `/api/version`; some clients enable features by it.',
        }),
        drain_timeout: Duration('30s', {
          description:
            'On SIGTERM or SIGINT: how long requests in progress may finish (new ones get 503) before every llama-server is stopped.',
        }),
        body_limit: Type.Integer({
          minimum: 1024,
          default: 64 * 1024 * 1024,
          description:
            'Largest request body of the API in bytes (images travel inline, base64); larger bodies get 413. ' +
            'The login and admin forms take at most 16 KB.',
        }),
        json_max_depth: Type.Integer({
          minimum: 8,
          maximum: 1000,
          default: 64,
          description: 'Deepest nesting of arrays and objects a JSON body may have; deeper bodies get 400.',
        }),
        allowed_origins: Type.Array(Type.String(), {
          default: [],
          description:
            'Browser origins allowed to call Corral besides the built-in ones (localhost, 127.0.0.1 and ' +
            '0.0.0.0 pages on any port; app://, file://, tauri://, vscode-webview://, vscode-file://), ' +
            'like OLLAMA_ORIGINS; "*" stands for any characters, a lone "*" allows every origin. ' +
            'A request from any other origin gets 403.',
        }),
        allowed_hosts: Type.Array(Type.String(), {
          default: [],
          description:
            'Host names a request to a loopback address may carry while auth.mode is not "required", ' +
            "besides localhost, *.localhost, IP addresses, this machine's name and server.host; " +
            '"*.example.com" allows subdomains, "*" any name. Others get 403 (DNS rebinding).',
        }),
        remote_media: Type.Boolean({
          default: false,
          description:
            'Let llama-server download http(s) image URLs named in `/v1` requests. Off by default: the gateway host would fetch any address a client names.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'The HTTP listener. Changes take effect when Corral restarts.',
      },
    ),
    llama_server: Type.Object(
      {
        binary: Type.Optional(
          Type.String({
            description:
              'The llama-server executable. Unset: `$CORRAL_LLAMA_SERVER`, then `llama-server` on PATH, then a build cached in `~/.cache/corral/llama.cpp/`.',
            examples: ['/usr/local/bin/llama-server'],
          }),
        ),
        backend: Type.Union(
          [
            Type.Literal('auto'),
            Type.Literal('cpu'),
            Type.Literal('cuda'),
            Type.Literal('rocm'),
            Type.Literal('vulkan'),
            Type.Literal('metal'),
          ],
          {
            default: 'auto',
            description:
              'Which llama.cpp build `corral provision` made to run: "auto" takes the best one in the cache (a GPU ' +
              'build over the CPU one) and, when there is none, provisions for the GPUs found; a backend name uses ' +
              'only that build. Ignored when `binary` is set; when "auto", the CORRAL_BACKEND environment variable may name one.',
          },
        ),
        args: Type.Array(Type.String(), {
          default: [],
          description: "Arguments for every model's llama-server, before the model's own `args`.",
          examples: [['-t', '4']],
        }),
        startup_timeout: Duration('120s', {
          description: 'How long a llama-server may take to load its model and listen before the load fails.',
        }),
        stop_timeout: Duration('10s', {
          description: 'How long a llama-server may take to exit after SIGTERM before it gets SIGKILL.',
        }),
        log_max_size: Size('20MB', {
          description:
            "Each model's log file (`<logs_dir>/<model>.log`) is kept under this size: its content moves to `<model>.log.1`, replacing the previous one. 0 = unbounded.",
        }),
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
      { additionalProperties: false, default: {}, description: 'How llama-server children are started and stopped.' },
    ),
    models_dirs: Type.Array(Type.String(), {
      default: ['data/models'],
      description:
        'Directories scanned for `*.gguf` files, relative to the working directory. Each file is served under its lowercased name (`Foo-Q4_K_M.gguf` → `foo-q4_k_m:latest`). Pulled models go into the first one.',
      examples: [['data/models', '/srv/models']],
    }),
    data_dir: Type.String({
      default: 'data',
      description:
        'Where Corral keeps its state: created and copied models (`models.json`), PID records of running children (`pids/`), cached digests.',
    }),
    ollama_store: Type.String({
      default: 'auto',
      minLength: 1,
      description:
        'An existing Ollama models directory to serve models from: "auto" ($OLLAMA_MODELS, else ~/.ollama/models, ' +
        'else /usr/share/ollama/.ollama/models, whichever exists), "off", or a path. Read-only unless ' +
        'ollama_store_writable is true; changes to it are picked up while running.',
    }),
    ollama_store_writable: Type.Boolean({
      default: false,
      description:
        'Let Corral write to the Ollama store: pulls, blob uploads, created and copied models go there instead ' +
        'of <data_dir>/ollama, and /api/delete removes its models (a blob only when no manifest uses it).',
    }),
    disk_reserve: Size('256MB', {
      description:
        'Free space (bytes or a size like "1GB") a pull or blob upload must leave on its disk; one that would ' +
        'not is refused with 507.',
    }),
    logs_dir: Type.String({
      default: 'logs',
      description: "Where each model's llama-server output goes (`<model>.log`).",
    }),
    defaults: Type.Object(
      {
        keep_alive: Duration('5m', {
          description:
            "How long a model stays loaded after its last request. 0 = unload right after each request; negative = never unload. A request's `keep_alive` wins.",
          examples: ['30m', -1],
        }),
        ctx_size: Type.Integer({
          minimum: 0,
          default: 4096,
          description:
            "Context per slot in tokens (Ollama's `num_ctx`); llama-server gets `-c ctx_size × parallel`. 0 uses the model's trained context length.",
        }),
        parallel: Type.Integer({
          minimum: 1,
          maximum: 256,
          default: 1,
          description: 'Concurrent requests per model (llama-server `--parallel` slots).',
        }),
        queue_size: Type.Integer({
          minimum: 0,
          default: 64,
          description:
            'Requests per model that may wait for a slot (or for the model to load); beyond it new requests get 503 with `Retry-After`.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Settings for every model that `models.<name>` does not override.',
      },
    ),
    scheduler: Type.Object(
      {
        max_loaded_models: Type.Integer({
          minimum: 0,
          default: 0,
          description:
            'Most models loaded at once; loading one more evicts the least recently used idle model. 0 = no limit.',
        }),
        memory_budget: Type.Union([Type.Integer({ minimum: 0 }), Type.String()], {
          title: 'size',
          default: 'auto',
          description:
            'Memory the loaded models may use together: bytes, a size like "16GB", or "auto" (`memory_fraction` of RAM plus NVIDIA VRAM). 0 = unlimited. A model needs about its file size plus its KV cache.',
          examples: ['16GB'],
        }),
        memory_fraction: Type.Number({
          minimum: 0.05,
          maximum: 1,
          default: 0.8,
          description: 'The fraction of memory that `memory_budget: auto` allows.',
        }),
        groups: Type.Record(Type.String(), Type.Array(Type.String()), {
          default: {},
          description:
            'Exclusive swap groups: loading one member first unloads the others (waiting for their requests to finish).',
          examples: [{ coders: ['qwen-coder', 'deepseek-coder'] }],
        }),
        eviction_wait: Duration('60s', {
          description:
            'How long a load waits for busy models to become idle so they can be evicted; then the request gets 503 with `Retry-After`.',
        }),
        overlap_eviction: Type.Union([Type.Literal('auto'), Type.Boolean()], {
          default: 'auto',
          description:
            'Start a model while the llama-server it evicted is still exiting. "auto": only when `llama-server --list-devices` lists no GPU, because a GPU load needs the VRAM the old process still holds, while in RAM the kernel frees memory as the process exits.',
        }),
        restart_backoff: Type.Object(
          {
            initial: Duration('1s', { description: 'Wait before the first restart of a crashed pinned model.' }),
            max: Duration('60s', {
              description: 'Longest wait between restarts (the wait doubles after each consecutive failure).',
            }),
            max_restarts: Type.Integer({
              minimum: 1,
              default: 5,
              description:
                'Consecutive failures after which a model is crash-looping: it is not restarted, and requests get its error at once until `reset_after` has passed or the way it starts changes (its config, its file).',
            }),
            reset_after: Duration('5m', {
              description: 'A model that stayed up this long, or last failed this long ago, starts counting afresh.',
            }),
          },
          {
            additionalProperties: false,
            default: {},
            description: 'Restarts of crashed pinned models, and the circuit breaker for crash-looping ones.',
          },
        ),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Which models are loaded: limits, memory budget, eviction and restarts.',
      },
    ),
    default_model: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The model a request without a `model` field uses on the llama.cpp and OpenAI routes (`/infill`, ' +
          '`/tokenize`, `/v1/*`, ...), as llama.vscode and other llama-server clients send none. Unset: the ' +
          'only loaded model, if exactly one is. Ollama routes (`/api/*`) always need `model`.',
        examples: ['qwen2.5-coder:1.5b'],
      }),
    ),
    models: Type.Record(Type.String(), ModelEntrySchema, {
      default: {},
      description:
        'Models with settings of their own, by name. Files found in `models_dirs` need no entry; an entry gives a short name, aliases, llama-server flags or defaults.',
      examples: [{ qwen: { path: '../data/models/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf', ctx_size: 8192 } }],
    }),
    auth: Type.Object(
      {
        mode: Type.Union([Type.Literal('loopback-open'), Type.Literal('required'), Type.Literal('off')], {
          default: 'loopback-open',
          description:
            '"loopback-open": clients on 127.0.0.1/::1 need no token, every other address does (as with Ollama on its default address). "required": a token everywhere. "off": no tokens; refused on a non-loopback address unless `force_insecure`.',
        }),
        force_insecure: Type.Boolean({
          default: false,
          description: 'Allow `mode: off` on a non-loopback address.',
        }),
        trusted_proxies: Type.Array(Type.String(), {
          default: [],
          description:
            'Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.',
          examples: [['127.0.0.1', '10.0.0.0/8']],
        }),
        session_idle: Duration('12h', { description: 'An admin UI login ends after this long without use.' }),
        session_absolute: Duration('7d', { description: 'An admin UI login ends this long after it began.' }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Who may use the API and the admin UI. Changes take effect when Corral restarts.',
      },
    ),
    store: Type.Object(
      {
        path: Type.String({
          default: 'data/corral.db',
          description:
            'The SQLite database (users, token hashes, sessions, audit and request logs), relative to the working ' +
            'directory. Not used when `url` is set.',
        }),
        url: Type.String({
          default: '',
          description:
            'A PostgreSQL database to keep the store in instead of SQLite, as `postgres://user:password@host:5432/db` ' +
            '(`?sslmode=require` for TLS); several Corral nodes can share it. Empty: the SQLite file at `path`. ' +
            'Keep the password out of the file: `${PGPASSWORD}` in the URL, or no password in it and PGPASSWORD ' +
            'in the environment.',
          examples: ['postgres://corral:${PGPASSWORD}@db.internal:5432/corral'],
        }),
        pool_size: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 10,
          description:
            'PostgreSQL connections this node opens at most; the server must allow this many times the number of nodes.',
        }),
        request_log_retention: Duration('30d', { description: 'Request log rows older than this are deleted.' }),
        audit_log_retention: Duration('365d', { description: 'Audit log rows older than this are deleted.' }),
      },
      {
        additionalProperties: false,
        default: {},
        description: "Corral's own database. Changes take effect when Corral restarts.",
      },
    ),
    metrics: Type.Object(
      {
        public: Type.Boolean({
          default: false,
          description:
            'Serve GET /metrics without a credential. Off: it needs a token (any role) where tokens are required.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The Prometheus endpoint.' },
    ),
    pull: Type.Object(
      {
        huggingface_url: Type.String({
          default: 'https://huggingface.co',
          description: 'The Hugging Face Hub (or a mirror) that `hf.co/...` pulls list and download from.',
        }),
        registry_url: Type.String({
          default: 'https://registry.ollama.ai',
          description:
            'Where names on Ollama\'s default host (registry.ollama.ai, e.g. "llama3.2:1b") are pulled from.',
        }),
        insecure: Type.Boolean({
          default: false,
          description:
            'Allow pulls over plain http (a request can also ask with "insecure": true). Digests are still verified.',
        }),
        private_hosts: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description:
            'Host names or IP addresses pulls may reach although they are, or resolve to, loopback, private or ' +
            'link-local addresses (refused otherwise, on every redirect too), e.g. a registry on the LAN.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Downloading models with `/api/pull`.' },
    ),
    alerts: AlertsSchema,
    operation_limits: OperationLimitsSchema,
    fleet: FleetSchema,
    worker: WorkerSchema,
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type ModelEntry = Static<typeof ModelEntrySchema>;
