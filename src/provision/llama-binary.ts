import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../runner/command.js';
import {
  backendDir,
  legacyDir,
  LLAMA_SOURCE_PACKAGE,
  LLAMA_SOURCE_TAG,
  type LlamaTool,
  type Manifest,
  readManifest,
} from './cache.js';
import { type Backend, BACKENDS, findTool } from './detect.js';
import { backendFlagsSummary } from './plan.js';
import type { Progress } from './progress.js';

export { LLAMA_SOURCE_PACKAGE, LLAMA_SOURCE_TAG } from './cache.js';
export type { Progress } from './progress.js';

export type BinarySource = 'config' | 'env' | 'path' | 'cache';

export interface ResolvedBinary {
  path: string;
  source: BinarySource;
  /** Why this binary was chosen, in words a `doctor` run can print. */
  reason: string;
  /** What Corral's cache says it was built for; undefined for a binary Corral did not provision. */
  backend?: Backend | undefined;
  manifest?: Manifest | undefined;
}

export interface ResolveOptions {
  configured?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Only this backend's cache directory (config llama_server.backend, CORRAL_BACKEND); "auto": the best there is. */
  backend?: Backend | 'auto' | undefined;
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `corral provision` puts the programs for a backend (CPU unless named). */
export function cachedBinaryPath(env: NodeJS.ProcessEnv = process.env, backend: Backend = 'cpu'): string {
  return join(backendDir(backend, env), 'llama-server');
}

/** The backend asked for: the option (config, flag) unless "auto", then CORRAL_BACKEND, else "auto". */
export function requestedBackend(opts: ResolveOptions): Backend | 'auto' {
  const fromEnv = (opts.env ?? process.env).CORRAL_BACKEND;
  const value = opts.backend && opts.backend !== 'auto' ? opts.backend : fromEnv || 'auto';
  if (value !== 'auto' && !(BACKENDS as readonly string[]).includes(value)) {
    throw new Error(`backend "${value}" is not one of auto, ${BACKENDS.join(', ')}`);
  }
  return value as Backend | 'auto';
}

/**
 * Provisioned directories to look in, best first: a GPU backend someone provisioned beats the CPU one;
 * the pre-backend layout (`<version>/llama-server`, a CPU build) comes last.
 */
function cacheCandidates(env: NodeJS.ProcessEnv, backend: Backend | 'auto'): string[] {
  const order = backend === 'auto' ? BACKENDS : [backend];
  const dirs = order.map((b) => backendDir(b, env));
  return backend === 'auto' || backend === 'cpu' ? [...dirs, legacyDir(env)] : dirs;
}

async function fromCache(tool: LlamaTool, env: NodeJS.ProcessEnv, backend: Backend | 'auto') {
  for (const dir of cacheCandidates(env, backend)) {
    const path = join(dir, tool);
    if (await isExecutable(path)) return { path, dir, manifest: await readManifest(dir) };
  }
  return undefined;
}

/**
 * Finds a llama-server without building one: config, then CORRAL_LLAMA_SERVER, then PATH, then our cache.
 * A configured or env-named binary that does not exist is an error, not a silent fall-through:
 * the operator asked for that one.
 */
export async function findLlamaServer(opts: ResolveOptions = {}): Promise<ResolvedBinary | undefined> {
  const env = opts.env ?? process.env;
  if (opts.configured) {
    if (!(await isExecutable(opts.configured))) {
      throw new Error(`llama_server.binary "${opts.configured}" (from config) is not an executable file`);
    }
    return { path: opts.configured, source: 'config', reason: 'named by llama_server.binary in the config' };
  }
  const fromEnv = env.CORRAL_LLAMA_SERVER;
  if (fromEnv) {
    if (!(await isExecutable(fromEnv))) {
      throw new Error(`CORRAL_LLAMA_SERVER="${fromEnv}" is not an executable file`);
    }
    return { path: fromEnv, source: 'env', reason: 'named by the CORRAL_LLAMA_SERVER environment variable' };
  }
  const onPath = await findTool('llama-server', env);
  if (onPath) return { path: onPath, source: 'path', reason: 'found on PATH' };
  const cached = await fromCache('llama-server', env, requestedBackend(opts));
  if (!cached) return undefined;
  const m = cached.manifest;
  return {
    path: cached.path,
    source: 'cache',
    reason: m
      ? `provisioned by Corral: llama.cpp ${m.version} for ${m.backend}, ${describeRoute(m)}`
      : `built by Corral from ${LLAMA_SOURCE_PACKAGE} (llama.cpp ${LLAMA_SOURCE_TAG}, CPU)`,
    backend: m?.backend ?? 'cpu',
    manifest: m,
  };
}

export function describeRoute(m: Manifest): string {
  if (m.route === 'npm-libs') return `server compiled against the prebuilt libraries of ${m.origin.join(' and ')}`;
  if (m.route === 'release') return `llama.cpp's release archive ${m.origin.join(', ')}`;
  return `built from source (${backendFlagsSummary(m.cmakeFlags)})`;
}

/** findLlamaServer, provisioning the best backend for this machine into the cache when nothing is found. */
export async function ensureLlamaServer(opts: ResolveOptions & { progress?: Progress } = {}): Promise<ResolvedBinary> {
  const found = await findLlamaServer(opts);
  if (found) return found;
  // Loaded only when needed: the gateway imports this module, and most starts find a binary.
  const { provision } = await import('./provision.js');
  await provision({ env: opts.env, backend: requestedBackend(opts), progress: opts.progress });
  const made = await findLlamaServer(opts);
  if (!made) throw new Error('provisioning finished but no llama-server was found in the cache');
  return { ...made, reason: `${made.reason} (provisioned just now)` };
}

/**
 * Another llama.cpp program from the same build as the server (`llama-quantize` for quantizing
 * models, `rpc-server` for llama.cpp RPC workers): PATH, then Corral's cache.
 */
export async function findLlamaTool(tool: LlamaTool, opts: ResolveOptions = {}): Promise<string | undefined> {
  const env = opts.env ?? process.env;
  const names = tool === 'rpc-server' ? ['rpc-server', 'ggml-rpc-server'] : [tool];
  for (const name of names) {
    const onPath = await findTool(name, env);
    if (onPath) return onPath;
  }
  return (await fromCache(tool, env, requestedBackend(opts)))?.path;
}

/** findLlamaTool, provisioning (which builds every program) when it is not there. */
export async function ensureLlamaTool(
  tool: LlamaTool,
  opts: ResolveOptions & { progress?: Progress } = {},
): Promise<string> {
  const found = await findLlamaTool(tool, opts);
  if (found) return found;
  const { provision } = await import('./provision.js');
  await provision({ env: opts.env, backend: requestedBackend(opts), progress: opts.progress });
  const made = await findLlamaTool(tool, opts);
  if (!made) throw new Error(`provisioning finished but no ${tool} was found in the cache`);
  return made;
}

/** `llama-server --version` prints e.g. "version: 0.5.0-dev (build 1, commit de3ff81)" on stderr. */
export async function llamaServerVersion(path: string): Promise<string> {
  const r = await runCommand(path, ['--version'], 10_000);
  const all = `${r.stderr}${r.stdout}`;
  const line = all.split('\n').find((l) => l.startsWith('version:'));
  return line ? line.slice('version:'.length).trim() : (all.trim().split('\n')[0] ?? 'unknown');
}
