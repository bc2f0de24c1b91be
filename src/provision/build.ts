import { chmod, copyFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlamaTool } from './cache.js';
import type { Backend } from './detect.js';
import { BASE_CMAKE_FLAGS, backendFlagsSummary, CMAKE_TARGETS, estimateSeconds } from './plan.js';
import { BuildProgress, formatDuration, type Progress } from './progress.js';
import { runTool } from './run-tool.js';

export interface CompileRequest {
  /** The llama.cpp checkout. */
  src: string;
  /** Where the programs go (the directory that becomes the cache entry). */
  staging: string;
  backend: Backend;
  tools: readonly LlamaTool[];
  env: NodeJS.ProcessEnv;
  progress: Progress;
}

const jobs = (): number => Math.max(2, availableParallelism());

interface CompileStep {
  configure: string[];
  env: Record<string, string>;
  onLibs: boolean;
  /** Targets built besides the programs' own (the rpc backend module). */
  extraTargets: string[];
}

async function compile(req: CompileRequest, step: CompileStep): Promise<void> {
  const { configure, onLibs } = step;
  const env = { ...req.env, ...step.env };
  req.progress(`configuring (cmake ${backendFlagsSummary(configure)})`);
  await runTool('cmake', ['-B', 'build', ...configure], { cwd: req.src, env });
  const estimate = estimateSeconds(req.backend, jobs(), onLibs);
  const what = onLibs ? 'the programs against the prebuilt libraries' : `llama.cpp (${req.backend})`;
  req.progress(`compiling ${what}: ${req.tools.join(', ')} (${formatDuration(estimate)} on ${jobs()} cores)`);
  const bar = new BuildProgress(req.progress, estimate);
  const targets = [...req.tools.map((t) => CMAKE_TARGETS[t]), ...step.extraTargets].flatMap((t) => ['--target', t]);
  await runTool('cmake', ['--build', 'build', ...targets, '-j', String(jobs())], {
    cwd: req.src,
    env,
    onLine: (l) => bar.line(l),
  });
  for (const tool of req.tools) {
    const target = join(req.staging, tool);
    await copyFile(join(req.src, 'build', 'bin', CMAKE_TARGETS[tool]), target);
    await chmod(target, 0o755);
  }
}

/** The whole of llama.cpp from source for one backend: static programs, no libraries beside them. */
export async function buildFromSource(req: CompileRequest, backendFlags: string[], env: Record<string, string>) {
  await compile(req, { configure: [...BASE_CMAKE_FLAGS, ...backendFlags], env, onLibs: false, extraTargets: [] });
}

/** Corral's CMakeLists for building only the programs (see the file's header). */
function shimCmakeLists(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  // Run from src/ (tests) the file is beside this module; compiled, this module is in dist/src/provision/.
  return here.includes(`${join('dist', 'src', 'provision')}`)
    ? join(here, '..', '..', '..', 'src', 'provision', 'cmake', 'CMakeLists.txt')
    : join(here, 'cmake', 'CMakeLists.txt');
}

/**
 * Only the programs, linked against prebuilt libraries already in `req.staging` (stageLibs): llama.cpp's
 * libraries, the largest part of a build, are not compiled. The rpc backend module is built with them.
 */
export async function buildOnLibs(req: CompileRequest, libSuffix: string) {
  await copyFile(shimCmakeLists(), join(req.src, 'CMakeLists.txt'));
  const rpc = req.tools.includes('rpc-server');
  const configure = ['-DCMAKE_BUILD_TYPE=Release', `-DCORRAL_LIBS=${req.staging}`, `-DCORRAL_LIB_SUFFIX=${libSuffix}`];
  await compile(req, { configure, env: {}, onLibs: true, extraTargets: rpc ? ['ggml-rpc'] : [] });
  // ggml finds backend modules beside the program: llama-server gains --rpc from it too.
  if (rpc) await copyFile(join(req.src, 'build', 'bin', 'libggml-rpc.so'), join(req.staging, 'libggml-rpc.so'));
}
