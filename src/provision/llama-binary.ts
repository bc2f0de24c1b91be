import { access, constants, mkdir, mkdtemp, readFile, rename, rm, copyFile, chmod } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runCommand } from '../runner/command.js';

/** The npm package whose tarball carries llama.cpp's source as a git bundle (see shared/spec/llama-server.md). */
export const LLAMA_SOURCE_PACKAGE = 'node-llama-cpp@3.22.1';
/** The llama.cpp tag inside that package; the cache is keyed by it so a version bump rebuilds. */
export const LLAMA_SOURCE_TAG = 'v0.5.0';

export type BinarySource = 'config' | 'env' | 'path' | 'cache';

export interface ResolvedBinary {
  path: string;
  source: BinarySource;
  /** Why this binary was chosen, in words a `doctor` run can print. */
  reason: string;
}

export interface ResolveOptions {
  configured?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'corral', 'llama.cpp', LLAMA_SOURCE_TAG);
}

export function cachedBinaryPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), 'llama-server');
}

async function findOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
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
  const onPath = await findOnPath('llama-server', env);
  if (onPath) return { path: onPath, source: 'path', reason: 'found on PATH' };
  const cached = cachedBinaryPath(env);
  if (await isExecutable(cached)) {
    return {
      path: cached,
      source: 'cache',
      reason: `built by Corral from ${LLAMA_SOURCE_PACKAGE} (llama.cpp ${LLAMA_SOURCE_TAG})`,
    };
  }
  return undefined;
}

export type Progress = (line: string) => void;

async function run(cmd: string, args: string[], cwd: string, progress: Progress): Promise<void> {
  // Loaded here, not at the top: only a build needs it, and the gateway imports this module too.
  const { execa } = await import('execa');
  const child = execa(cmd, args, { cwd, all: true, buffer: false, stdin: 'ignore' });
  const tail: string[] = [];
  child.all?.setEncoding('utf8');
  let partial = '';
  child.all?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      // cmake/make progress lines look like "[ 42%] Building CXX object ..."; forward those, not the noise.
      if (/^\[\s*\d+%\]/.test(line)) progress(line);
    }
  });
  try {
    await child;
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${tail.join('\n')}`, { cause: err });
  }
}

/**
 * Builds llama-server from the llama.cpp source bundled in node-llama-cpp's npm tarball.
 * Everything happens in a scratch directory; the binary reaches the cache by rename, so an interrupted
 * build never leaves a half-written executable where findLlamaServer would pick it up.
 */
export async function buildLlamaServer(
  env: NodeJS.ProcessEnv = process.env,
  progress: Progress = () => {},
): Promise<string> {
  const target = cachedBinaryPath(env);
  await mkdir(cacheDir(env), { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'corral-llama-build-'));
  try {
    progress(`fetching llama.cpp source (${LLAMA_SOURCE_PACKAGE}) from the npm registry`);
    await run('npm', ['pack', LLAMA_SOURCE_PACKAGE, '--silent'], work, progress);
    const tarball = `${LLAMA_SOURCE_PACKAGE.replace('@', '-')}.tgz`;
    await run(
      'tar',
      ['-xzf', tarball, 'package/llama/gitRelease.bundle', 'package/llama/llama.cpp.info.json'],
      work,
      progress,
    );
    const info = JSON.parse(await readFile(join(work, 'package/llama/llama.cpp.info.json'), 'utf8')) as {
      tag?: string;
    };
    if (info.tag !== LLAMA_SOURCE_TAG) {
      throw new Error(`${LLAMA_SOURCE_PACKAGE} carries llama.cpp ${info.tag}, expected ${LLAMA_SOURCE_TAG}`);
    }
    progress('unpacking the llama.cpp git bundle');
    await run('git', ['clone', '--quiet', join(work, 'package/llama/gitRelease.bundle'), 'llama.cpp'], work, progress);
    const src = join(work, 'llama.cpp');
    progress('configuring (cmake)');
    await run(
      'cmake',
      [
        '-B',
        'build',
        '-DCMAKE_BUILD_TYPE=Release',
        '-DGGML_NATIVE=OFF',
        '-DLLAMA_OPENSSL=OFF',
        '-DLLAMA_CURL=OFF',
        '-DLLAMA_BUILD_TESTS=OFF',
        '-DLLAMA_BUILD_EXAMPLES=OFF',
        '-DLLAMA_BUILD_SERVER=ON',
        '-DLLAMA_BUILD_TOOLS=ON',
        '-DBUILD_SHARED_LIBS=OFF',
      ],
      src,
      progress,
    );
    progress('compiling llama-server (about 7 minutes on 2 cores)');
    await run(
      'cmake',
      [
        '--build',
        'build',
        '--target',
        'llama-server',
        '-j',
        String(Math.max(2, (await import('node:os')).availableParallelism())),
      ],
      src,
      progress,
    );
    const staged = `${target}.partial-${process.pid}`;
    await copyFile(join(src, 'build/bin/llama-server'), staged);
    await chmod(staged, 0o755);
    await rename(staged, target);
    progress(`llama-server ready at ${target}`);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** findLlamaServer, building into the cache when nothing is found. */
export async function ensureLlamaServer(opts: ResolveOptions & { progress?: Progress } = {}): Promise<ResolvedBinary> {
  const found = await findLlamaServer(opts);
  if (found) return found;
  const env = opts.env ?? process.env;
  const path = await buildLlamaServer(env, opts.progress);
  return {
    path,
    source: 'cache',
    reason: `built just now from ${LLAMA_SOURCE_PACKAGE} (llama.cpp ${LLAMA_SOURCE_TAG})`,
  };
}

/** `llama-server --version` prints e.g. "version: 0.5.0-dev (build 1, commit de3ff81)" on stderr. */
export async function llamaServerVersion(path: string): Promise<string> {
  const r = await runCommand(path, ['--version'], 10_000);
  const all = `${r.stderr}${r.stdout}`;
  const line = all.split('\n').find((l) => l.startsWith('version:'));
  return line ? line.slice('version:'.length).trim() : (all.trim().split('\n')[0] ?? 'unknown');
}
