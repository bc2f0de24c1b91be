import { createHash } from 'node:crypto';
import { access, copyFile, mkdir, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { runCommand } from '../runner/command.js';
import { LLAMA_SOURCE_PACKAGE, LLAMA_SOURCE_TAG } from './cache.js';
import { type Backend, findTool } from './detect.js';
import type { Progress } from './progress.js';
import { ProvisionError, runTool } from './run-tool.js';
import { npmPack } from './source.js';

/** node-llama-cpp publishes its platform packages under the version of its source package. */
export const NPM_LIBS_VERSION = LLAMA_SOURCE_PACKAGE.split('@').at(-1)!;

/**
 * A GPU backend as node-llama-cpp ships it: one loadable ggml module (`libggml-cuda.so`) in a
 * package of its own. The module needs libraries that are not in the package; `needs` names them
 * by soname, for the check that they are on this machine.
 */
export interface GpuModule {
  pkg: string;
  /** Path of the module inside the package's bins directory. */
  file: string;
  needs: string[];
}

export interface NpmLibsPlan {
  /** The package with libllama, libggml, the CPU backends and llama-common. */
  base: string;
  gpu?: GpuModule | undefined;
}

const BASE_PACKAGES: Record<string, string> = {
  'linux-x64': 'linux-x64',
  'linux-arm64': 'linux-arm64',
  'darwin-arm64': 'mac-arm64-metal',
  'darwin-x64': 'mac-x64',
};

/**
 * The CUDA modules: the main package is built with CUDA 13, its "-ext" package holds a CUDA 12 build
 * (`fallback/`). Neither ships the CUDA runtime: libcudart and libcublas come from the system (a CUDA
 * toolkit or the distribution's runtime packages), libcuda.so.1 from the NVIDIA driver.
 */
const CUDA_MODULES: GpuModule[] = [
  {
    pkg: 'linux-x64-cuda',
    file: 'libggml-cuda.so',
    needs: ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13', 'libcuda.so.1'],
  },
  {
    pkg: 'linux-x64-cuda-ext',
    file: 'fallback/libggml-cuda.so',
    needs: ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcuda.so.1'],
  },
];
const VULKAN_MODULE: GpuModule = { pkg: 'linux-x64-vulkan', file: 'libggml-vulkan.so', needs: ['libvulkan.so.1'] };

/** Where the dynamic linker finds shared libraries, plus the usual CUDA install directories. */
export async function librarySearchPath(env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const dirs = [
    ...(env.LD_LIBRARY_PATH ?? '').split(delimiter),
    ...(env.CUDA_PATH ? [join(env.CUDA_PATH, 'lib64'), join(env.CUDA_PATH, 'lib')] : []),
    '/usr/local/cuda/lib64',
    '/usr/local/cuda/lib',
  ].filter(Boolean);
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[]))
      if (!found.has(name)) found.set(name, join(dir, name));
  }
  // `ldconfig -p` lines: "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1"
  const ldconfig = (await findTool('ldconfig', env, ['/sbin', '/usr/sbin'])) ?? 'ldconfig';
  const cache = await runCommand(ldconfig, ['-p'], 5_000, env);
  for (const m of cache.stdout.matchAll(/^\s+(\S+) \(.*\) => (\S+)$/gm)) if (!found.has(m[1]!)) found.set(m[1]!, m[2]!);
  return found;
}

export interface NpmLibsChoice {
  plan?: NpmLibsPlan | undefined;
  /** Why there is no plan, or what the plan lacks, in words for the user. */
  problem?: string | undefined;
}

/** Which packages provide `backend` on this platform, and whether the libraries they need are here. */
export async function npmLibsFor(
  backend: Backend,
  platform: string,
  arch: string,
  env: NodeJS.ProcessEnv,
): Promise<NpmLibsChoice> {
  const base = BASE_PACKAGES[`${platform}-${arch}`];
  if (!base) return { problem: `node-llama-cpp has no prebuilt libraries for ${platform}-${arch}` };
  if (backend === 'cpu' || (backend === 'metal' && platform === 'darwin')) return { plan: { base } };
  const modules = platform === 'linux' && arch === 'x64' ? moduleCandidates(backend) : [];
  if (modules.length === 0) return { problem: `node-llama-cpp has no ${backend} libraries for ${platform}-${arch}` };
  const libs = await librarySearchPath(env);
  for (const gpu of modules) if (gpu.needs.every((n) => libs.has(n))) return { plan: { base, gpu } };
  const wanted = modules.map((m) => m.needs.filter((n) => !libs.has(n)).join(', ')).join(' or ');
  return { problem: `the prebuilt ${backend} backend needs ${wanted}, not found on this machine` };
}

function moduleCandidates(backend: Backend): GpuModule[] {
  if (backend === 'cuda') return CUDA_MODULES;
  if (backend === 'vulkan') return [VULKAN_MODULE];
  return [];
}

interface BuildMetadata {
  buildOptions?: { llamaCpp?: { release?: string }; gpu?: string | boolean };
}

/**
 * Fetches one platform package and returns its bins directory, refusing a package built from another
 * llama.cpp release than the source Corral compiles: llama.cpp's C++ interfaces change between releases.
 * An extension package (`-cuda-ext`) has no build metadata of its own; it is accepted as a module of the
 * base package of the same version, whose metadata is required.
 */
export async function fetchPlatformPackage(
  pkg: string,
  version: string,
  work: string,
  env: NodeJS.ProcessEnv,
  role: 'base' | 'module' = 'base',
): Promise<string> {
  const spec = `@node-llama-cpp/${pkg}@${version}`;
  const tarball = await npmPack(spec, work, env).catch((err: Error) => {
    throw new ProvisionError(`${spec} could not be fetched from the npm registry: ${err.message.split('\n')[0]}`);
  });
  const dir = join(work, pkg);
  await mkdir(dir, { recursive: true });
  await runTool('tar', ['-xzf', tarball, '-C', dir], { cwd: work });
  await rm(tarball, { force: true });
  const binsRoot = join(dir, 'package', 'bins');
  const [bins] = await readdir(binsRoot).catch(() => [] as string[]);
  if (!bins) throw new ProvisionError(`${spec} has no bins directory`);
  const text = await readFile(join(binsRoot, bins, '_nlcBuildMetadata.json'), 'utf8').catch(() => undefined);
  if (text === undefined && role === 'module') return join(binsRoot, bins);
  const release = (JSON.parse(text ?? '{}') as BuildMetadata).buildOptions?.llamaCpp?.release;
  if (release !== LLAMA_SOURCE_TAG) {
    throw new ProvisionError(
      `${spec} was built from llama.cpp ${release ?? '(unknown release)'}, but Corral builds llama-server from ` +
        `${LLAMA_SOURCE_TAG}: refusing to pair libraries and a server of different releases`,
    );
  }
  return join(binsRoot, bins);
}

function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/** The name libllama carries in a bins directory (`libllama.v0.5.0.so` → "v0.5.0"); llama-common excluded. */
export async function libSuffix(bins: string): Promise<string> {
  const lib = (await readdir(bins)).find((f) => /^libllama\.(.+)\.(so|dylib)$/.test(f));
  if (!lib) throw new ProvisionError(`no libllama in ${bins}`);
  return /^libllama\.(.+)\.(so|dylib)$/.exec(lib)![1]!;
}

/**
 * Copies the libraries of the base package (and the GPU module) into `staging`. The GPU module is
 * loaded by the base package's ggml, so both must carry the same libggml-base; a different one means
 * a different build, and is refused.
 */
export async function stageLibs(
  plan: NpmLibsPlan,
  staging: string,
  env: NodeJS.ProcessEnv,
  progress: Progress,
): Promise<{ bins: string; suffix: string; origin: string[] }> {
  const work = join(staging, '.packages');
  const origin = [`@node-llama-cpp/${plan.base}@${NPM_LIBS_VERSION}`];
  progress(`fetching prebuilt llama.cpp libraries (${origin[0]}) from the npm registry`);
  const bins = await fetchPlatformPackage(plan.base, NPM_LIBS_VERSION, work, env);
  for (const f of await readdir(bins)) {
    if (/\.(so|dylib)$/.test(f)) await copyFile(join(bins, f), join(staging, f));
  }
  if (plan.gpu) {
    origin.push(`@node-llama-cpp/${plan.gpu.pkg}@${NPM_LIBS_VERSION}`);
    progress(`fetching the prebuilt GPU backend (${origin[1]}) from the npm registry`);
    const gpuBins = await fetchPlatformPackage(plan.gpu.pkg, NPM_LIBS_VERSION, work, env, 'module');
    const theirBase = join(gpuBins, 'libggml-base.so');
    if ((await exists(theirBase)) && (await sha256(theirBase)) !== (await sha256(join(bins, 'libggml-base.so')))) {
      throw new ProvisionError(`${origin[1]} carries another libggml-base than ${origin[0]}: not the same build`);
    }
    const module = join(gpuBins, plan.gpu.file);
    await copyFile(module, join(staging, module.split('/').at(-1)!));
    await linkRuntime(plan.gpu.needs, staging, env);
  }
  await rm(work, { recursive: true, force: true });
  return { bins: staging, suffix: await libSuffix(staging), origin };
}

/**
 * Links the GPU runtime libraries next to the module: ggml loads it with RUNPATH $ORIGIN, and a CUDA
 * installed in /usr/local/cuda is often not on the linker's path. The driver's libcuda stays where it is.
 */
async function linkRuntime(needs: string[], staging: string, env: NodeJS.ProcessEnv): Promise<void> {
  const libs = await librarySearchPath(env);
  for (const name of needs) {
    const path = libs.get(name);
    if (!path || name === 'libcuda.so.1' || name === 'libvulkan.so.1') continue;
    await symlink(path, join(staging, name)).catch(() => {});
  }
}
