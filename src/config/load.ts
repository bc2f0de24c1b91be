import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { ConfigSchema, ModelEntrySchema, type Config } from './schema.js';
import { parseDuration, parseSize } from './duration.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    /** One entry per problem, each prefixed with file:line where known. */
    readonly problems: string[],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file it came from, or undefined for the embedded defaults. */
  file: string | undefined;
  /** Directory that relative model paths are resolved against. */
  baseDir: string;
  /** The YAML text as read (for the admin UI). */
  source: string;
}

/** `${VAR}` and `${VAR:-default}`; `$${` escapes a literal `${`. An unset variable without default is an error. */
export function interpolateEnv(text: string, env: NodeJS.ProcessEnv, file: string): string {
  const { text: out, problems } = substituteEnv(text, env, file);
  if (problems.length) throw new ConfigError(`invalid config ${file}`, problems);
  return out;
}

/** The substitution itself: unset variables become '' and a problem each, so parsing can go on and report more. */
function substituteEnv(text: string, env: NodeJS.ProcessEnv, file: string): { text: string; problems: string[] } {
  const problems: string[] = [];
  const lines = text.split('\n');
  const out = lines.map((full, i) => {
    // Comments are left alone, so documentation may mention ${VAR} without defining it.
    const hash = full.search(/(^|\s)#/);
    const line = hash === -1 ? full : full.slice(0, hash);
    const comment = hash === -1 ? '' : full.slice(hash);
    return (
      line.replace(
        /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
        (whole, name: string, fallback: string | undefined) => {
          if (whole.startsWith('$$')) return whole.slice(1);
          const value = env[name];
          if (value !== undefined && value !== '') return value;
          if (fallback !== undefined) return fallback;
          problems.push(
            `${file}:${i + 1}: environment variable ${name} is not set (use \${${name}:-default} for a fallback)`,
          );
          return '';
        },
      ) + comment
    );
  });
  return { text: out.join('\n'), problems };
}

function checkSemantics(config: Config, where: (path: (string | number)[]) => string): string[] {
  const problems: string[] = [];
  const durations: [string[], unknown][] = [
    [['server', 'drain_timeout'], config.server.drain_timeout],
    [['llama_server', 'startup_timeout'], config.llama_server.startup_timeout],
    [['llama_server', 'stop_timeout'], config.llama_server.stop_timeout],
    [['defaults', 'keep_alive'], config.defaults.keep_alive],
    [['scheduler', 'eviction_wait'], config.scheduler.eviction_wait],
    [['scheduler', 'restart_backoff', 'initial'], config.scheduler.restart_backoff.initial],
    [['scheduler', 'restart_backoff', 'max'], config.scheduler.restart_backoff.max],
    [['scheduler', 'restart_backoff', 'reset_after'], config.scheduler.restart_backoff.reset_after],
    [['auth', 'session_idle'], config.auth.session_idle],
    [['auth', 'session_absolute'], config.auth.session_absolute],
    [['store', 'request_log_retention'], config.store.request_log_retention],
    [['store', 'audit_log_retention'], config.store.audit_log_retention],
  ];
  durations.push([['alerts', 'interval'], config.alerts.interval]);
  for (const [key, value] of Object.entries(config.alerts.retry))
    if (key !== 'attempts') durations.push([['alerts', 'retry', key], value]);
  for (const [name, rule] of Object.entries(config.alerts.rules)) {
    for (const [key, value] of Object.entries(rule))
      if (key === 'cooldown' || key === 'window' || key === 'threshold')
        durations.push([['alerts', 'rules', name, key], value]);
  }
  for (const [name, limit] of Object.entries(config.operation_limits))
    durations.push([['operation_limits', name, 'per'], limit.per]);
  for (const [name, entry] of Object.entries(config.models)) {
    if (entry.keep_alive !== undefined) durations.push([['models', name, 'keep_alive'], entry.keep_alive]);
  }
  for (const key of ['heartbeat', 'expiry', 'connect_timeout'] as const)
    durations.push([['fleet', key], config.fleet[key]]);
  for (const [path, value] of durations) {
    try {
      parseDuration(value as string | number);
    } catch (err) {
      problems.push(`${where(path)}${path.join('.')}: ${(err as Error).message}`);
    }
  }
  const sizes: [string[], string | number][] = [
    [['llama_server', 'log_max_size'], config.llama_server.log_max_size],
    [['disk_reserve'], config.disk_reserve],
    [['alerts', 'rules', 'disk_free', 'min_free'], config.alerts.rules.disk_free.min_free],
    [['worker', 'memory'], config.worker.memory],
  ];
  if (config.scheduler.memory_budget !== 'auto')
    sizes.push([['scheduler', 'memory_budget'], config.scheduler.memory_budget]);
  for (const [path, value] of sizes) {
    try {
      parseSize(value);
    } catch (err) {
      problems.push(`${where(path)}${path.join('.')}: ${(err as Error).message}`);
    }
  }
  const names = new Map<string, string>();
  for (const [name, entry] of Object.entries(config.models)) {
    for (const n of [name, ...entry.aliases]) {
      const key = n.toLowerCase();
      const other = names.get(key);
      if (other && other !== name)
        problems.push(`${where(['models', name])}models.${name}: name "${n}" is also used by model "${other}"`);
      names.set(key, name);
    }
  }
  for (const [group, members] of Object.entries(config.scheduler.groups)) {
    for (const m of members) {
      if (!names.has(m.toLowerCase()) && !names.has(`${m.toLowerCase()}:latest`)) {
        // Discovered models may also be group members, so this is only checked for at load time by the catalog.
        void group;
      }
    }
  }
  return [...problems, ...fleetProblems(config, where)];
}

/** A fleet needs the database the nodes share, and a node must not expire between its own heartbeats. */
function fleetProblems(config: Config, where: (path: (string | number)[]) => string): string[] {
  const { fleet } = config;
  if (!fleet.enabled) return [];
  const problems: string[] = [];
  if (!config.store.url)
    problems.push(
      `${where(['fleet', 'enabled'])}fleet.enabled: needs store.url, the PostgreSQL database the nodes share`,
    );
  try {
    if (parseDuration(fleet.expiry) <= parseDuration(fleet.heartbeat))
      problems.push(`${where(['fleet', 'expiry'])}fleet.expiry: must be longer than fleet.heartbeat`);
  } catch {
    // reported with the other durations
  }
  return problems;
}

/** At most this many problems are listed; the rest are counted, so a wholly wrong file stays readable. */
const MAX_PROBLEMS = 50;

/** Parses and validates YAML text. Throws ConfigError with every file:line problem found, in line order. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const { text: interpolated, problems: envProblems } = substituteEnv(text, env, file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(interpolated, { lineCounter });
  if (doc.errors.length) {
    const yaml = doc.errors.map((e) => `${file}:${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`);
    throw new ConfigError(`invalid YAML in ${file}`, inLineOrder([...envProblems, ...yaml]));
  }
  const raw = (doc.toJS() ?? {}) as unknown;
  const where = (path: (string | number)[]): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return `${file}:${lineCounter.linePos(node.range[0]).line}: `;
    }
    return `${file}: `;
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`invalid config ${file}`, [`${file}:1: the top level must be a mapping`]);
  }
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(raw)) as { models?: Record<string, unknown> };
  // TypeBox does not descend into Record values when applying defaults.
  if (withDefaults.models && typeof withDefaults.models === 'object') {
    for (const [name, entry] of Object.entries(withDefaults.models)) {
      if (entry && typeof entry === 'object') withDefaults.models[name] = Value.Default(ModelEntrySchema, entry);
    }
  }
  const schema = schemaProblems(withDefaults, where);
  const config = withDefaults as Config;
  // Value checks (durations, sizes, names) run on a file with type errors too, so one pass reports
  // everything; a key the schema already rejected is not reported twice.
  let semantic: string[] = [];
  try {
    semantic = checkSemantics(config, where).filter((p) => !schema.keys.has(problemKey(p)));
  } catch {
    // A shape the schema rejected can break a check; the schema problems already cover it.
  }
  const problems = [...envProblems, ...schema.problems, ...semantic];
  if (problems.length) throw new ConfigError(`invalid config ${file}`, inLineOrder(problems));
  return config;
}

/** "file:12: a.b: message" → "a.b", to tell whether a key already has a problem. */
const problemKey = (problem: string): string => /^.*?:\d*:? ?([^:\s]+):/.exec(problem)?.[1] ?? problem;

function schemaProblems(value: unknown, where: (path: string[]) => string): { problems: string[]; keys: Set<string> } {
  const problems: string[] = [];
  const keys = new Set<string>();
  for (const e of Value.Errors(ConfigSchema, value)) {
    const path = e.path
      .split('/')
      .filter(Boolean)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const key = path.join('.') || '(top level)';
    const msg = `${where(path)}${key}: ${e.message}`;
    if (!problems.includes(msg)) problems.push(msg);
    keys.add(key);
  }
  return { problems, keys };
}

/** Sorted by line number (stable within a line), capped at MAX_PROBLEMS with a count of the rest. */
function inLineOrder(problems: string[]): string[] {
  const line = (p: string): number => Number(/:(\d+): /.exec(p)?.[1] ?? Number.MAX_SAFE_INTEGER);
  const sorted = problems.map((p, i) => ({ p, i })).sort((a, b) => line(a.p) - line(b.p) || a.i - b.i);
  const shown = sorted.slice(0, MAX_PROBLEMS).map((x) => x.p);
  if (sorted.length > MAX_PROBLEMS) shown.push(`… and ${sorted.length - MAX_PROBLEMS} more problems`);
  return shown;
}

export function defaultConfig(): Config {
  return parseConfig('{}', '(defaults)');
}

/** Loads a config file; a missing file falls back to the embedded defaults only when `optional`. */
export async function loadConfig(
  file: string,
  opts: { optional?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<LoadedConfig> {
  const abs = resolve(file);
  let source: string;
  try {
    source = await readFile(abs, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && opts.optional) {
      return { config: defaultConfig(), file: undefined, baseDir: process.cwd(), source: '' };
    }
    throw new ConfigError(`cannot read config ${abs}`, [`${abs}: ${(err as Error).message}`]);
  }
  return { config: parseConfig(source, abs, opts.env), file: abs, baseDir: dirname(abs), source };
}
