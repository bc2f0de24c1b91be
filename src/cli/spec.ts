import type { ParseArgsConfig } from 'node:util';

/** One command-line option: what parseArgs needs, plus what `--help` says about it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in help ("FILE"); boolean flags have none. */
  value?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  /** Longer text after the usage line: subcommands, what happens. */
  details?: string[];
  options: Record<string, OptionSpec>;
  /** Environment variables the command reads (names from ENV_VARS). */
  env: string[];
  /** Takes subcommands and names after the options' parsing (user, token, store). */
  positionals?: true;
}

const config: OptionSpec = {
  type: 'string',
  short: 'c',
  value: 'FILE',
  description: 'config file (default: $CORRAL_CONFIG, else config/corral.yaml; missing = built-in defaults)',
};
const help: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };
const db: OptionSpec = {
  type: 'string',
  value: 'FILE|URL',
  description: "SQLite file or postgres:// URL (default: the config's store.url, else store.path)",
};
const role: OptionSpec = { type: 'string', value: 'ROLE', description: 'viewer (default), operator or admin' };

/** Every environment variable Corral reads, with what it does. */
export const ENV_VARS: Record<string, string> = {
  CORRAL_CONFIG: 'config file, when --config is not given',
  CORRAL_HOST: 'address to listen on (over server.host; --host wins)',
  CORRAL_PORT: 'port to listen on (over server.port; --port wins)',
  CORRAL_LOG_LEVEL: 'trace, debug, info (default), warn or error',
  CORRAL_LOG_FORMAT: 'pretty, json, or auto (default: pretty on a terminal, JSON otherwise)',
  CORRAL_LLAMA_SERVER: 'llama-server binary to run (over PATH and the cache; config llama_server.binary wins)',
  CORRAL_BACKEND: 'auto (default), cpu, cuda, rocm, vulkan or metal: which provisioned llama.cpp build to use',
  CORRAL_RELEASE_URL: "where `provision --prebuilt` downloads llama.cpp's release archives from",
  CORRAL_ADMIN_USER: 'name of the first admin created from CORRAL_ADMIN_PASSWORD (default admin)',
  CORRAL_ADMIN_PASSWORD: 'creates the first admin at start instead of printing a setup link',
  CORRAL_FLEET_SECRET: 'the secret fleet nodes sign forwarded requests with, when fleet.secret is empty',
  CORRAL_PASSWORD: 'password for `user add` and `user passwd` (else --password, else the first line of stdin)',
  XDG_CACHE_HOME: 'llama.cpp builds are cached in $XDG_CACHE_HOME/corral/llama.cpp (default ~/.cache)',
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'serve',
    usage: 'corral serve [options]',
    summary: 'run the gateway (the default command)',
    details: [
      'Provisions llama-server on first start if none is found (see `corral provision`),',
      'then serves the Ollama, OpenAI and Anthropic APIs and the admin UI until SIGINT/SIGTERM.',
    ],
    options: {
      config,
      host: { type: 'string', value: 'ADDR', description: 'address to listen on (default: server.host, 127.0.0.1)' },
      port: { type: 'string', short: 'p', value: 'N', description: 'port to listen on (default: server.port, 11434)' },
      'log-format': { type: 'string', value: 'FMT', description: 'pretty, json or auto (default auto)' },
      'log-level': { type: 'string', value: 'LEVEL', description: 'trace, debug, info, warn or error (default info)' },
      help,
    },
    env: [
      'CORRAL_CONFIG',
      'CORRAL_HOST',
      'CORRAL_PORT',
      'CORRAL_LOG_LEVEL',
      'CORRAL_LOG_FORMAT',
      'CORRAL_LLAMA_SERVER',
      'CORRAL_BACKEND',
      'CORRAL_ADMIN_USER',
      'CORRAL_ADMIN_PASSWORD',
      'CORRAL_FLEET_SECRET',
      'XDG_CACHE_HOME',
    ],
  },
  {
    name: 'worker',
    usage: 'corral worker [options]',
    summary: "lend this machine to the fleet: run llama.cpp's rpc-server and register it",
    details: [
      'Runs rpc-server as `worker:` says (address, port, devices, memory) and, with `fleet.enabled`, registers',
      'it while it runs, so models with `rpc: auto` on any node compute on it. rpc-server has no authentication:',
      'keep it on loopback or a network only the Corral nodes reach (docs/fleet.md).',
    ],
    options: {
      config,
      'log-level': { type: 'string', value: 'LEVEL', description: 'trace, debug, info, warn or error (default info)' },
      help,
    },
    env: ['CORRAL_CONFIG', 'CORRAL_LOG_LEVEL', 'CORRAL_BACKEND', 'CORRAL_FLEET_SECRET', 'XDG_CACHE_HOME'],
  },
  {
    name: 'doctor',
    usage: 'corral doctor [options]',
    summary: 'check the config, llama-server, GPUs and models: errors exit 1, the rest are warnings',
    options: { config, help },
    env: ['CORRAL_CONFIG', 'CORRAL_LLAMA_SERVER', 'CORRAL_BACKEND', 'XDG_CACHE_HOME'],
  },
  {
    name: 'provision',
    usage: 'corral provision [options]',
    summary: 'get llama-server, llama-quantize and rpc-server for this machine into the cache',
    details: [
      'Detects GPUs (nvidia-smi, rocminfo, vulkaninfo, Apple silicon) and their toolkits, picks a backend,',
      "and compiles llama.cpp's programs against node-llama-cpp's prebuilt libraries (minutes), or all",
      'of llama.cpp from source (longer; GPU builds need the toolkit). Does nothing when a build exists.',
    ],
    options: {
      backend: { type: 'string', value: 'NAME', description: 'auto (default), cpu, cuda, rocm, vulkan or metal' },
      'from-source': { type: 'boolean', description: 'compile all of llama.cpp, not only its programs' },
      prebuilt: { type: 'boolean', description: "download llama.cpp's own release archive (checked by sha256)" },
      'release-url': { type: 'string', value: 'URL', description: 'release download base (default: GitHub)' },
      force: { type: 'boolean', description: 'provision again even if a build is found' },
      help,
    },
    env: ['CORRAL_BACKEND', 'CORRAL_RELEASE_URL', 'XDG_CACHE_HOME'],
  },
  {
    name: 'user',
    usage: 'corral user add NAME [--role ROLE] [--password PW] | passwd NAME | unlock NAME | list',
    summary: 'manage admin-UI accounts in the database',
    options: { config, db, role, password: { type: 'string', value: 'PW', description: 'the password' }, help },
    env: ['CORRAL_CONFIG', 'CORRAL_PASSWORD'],
    positionals: true,
  },
  {
    name: 'token',
    usage: 'corral token create --name NAME [options] | list | revoke ID',
    summary: 'manage API tokens (the secret is shown once, at creation)',
    options: {
      config,
      db,
      name: { type: 'string', value: 'NAME', description: 'what the token is for (create)' },
      role,
      models: { type: 'string', value: 'A,B', description: 'models the token may use (default: all)' },
      expires: { type: 'string', value: 'DURATION', description: 'lifetime such as 30d (default: never)' },
      rpm: { type: 'string', value: 'N', description: 'requests per minute allowed' },
      tpd: { type: 'string', value: 'N', description: 'tokens per day allowed' },
      help,
    },
    env: ['CORRAL_CONFIG'],
    positionals: true,
  },
  {
    name: 'store',
    usage: 'corral store backup FILE [options] | migrate --from FILE --to URL',
    summary: 'back up the SQLite database while Corral runs, or move it to PostgreSQL',
    details: [
      "backup: SQLite's online backup, integrity-checked, taken while Corral runs. A PostgreSQL store",
      'is backed up with pg_dump instead (docs/operations.md).',
      'migrate: copies users, token hashes, live sessions, settings, usage, the audit and request logs,',
      'alert history and conversations from a SQLite file into an empty PostgreSQL database, in one',
      'transaction; then set store.url to it.',
    ],
    options: {
      config,
      db,
      force: { type: 'boolean', description: 'replace FILE if it exists (backup)' },
      from: { type: 'string', value: 'FILE', description: 'the SQLite database to copy (migrate)' },
      to: { type: 'string', value: 'URL', description: 'postgres://user:password@host:5432/db (migrate)' },
      help,
    },
    env: ['CORRAL_CONFIG'],
    positionals: true,
  },
  {
    name: 'report',
    usage: 'corral report [options]',
    summary: 'usage and latency per model or token from the request log; --compare flags regressions',
    details: [
      'Exits 1 when --compare finds a model whose p95 time to first token rose, or whose median tokens/s',
      'fell, by more than --threshold percent (models with fewer than --min-requests requests are skipped).',
    ],
    options: {
      config,
      db,
      since: { type: 'string', value: 'DURATION', description: 'how far back to look (default 7d)' },
      by: { type: 'string', value: 'KEY', description: 'model (default) or token' },
      json: { type: 'boolean', description: 'print the report as JSON (keep it for a later --compare)' },
      csv: { type: 'boolean', description: 'print the report as CSV' },
      compare: { type: 'string', value: 'FILE', description: 'an earlier `--json` report to compare with' },
      threshold: { type: 'string', value: 'PCT', description: 'regression threshold in percent (default 10)' },
      'min-requests': { type: 'string', value: 'N', description: 'requests a model needs to be compared (default 5)' },
      help,
    },
    env: ['CORRAL_CONFIG'],
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The parseArgs options of a command, without the help texts. */
export function parseOptions(spec: CommandSpec): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(
    Object.entries(spec.options).map(([k, o]) => [k, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
  );
}
