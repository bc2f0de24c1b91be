import { access, constants } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { runCommand } from '../runner/command.js';

/** What llama.cpp computes on: ggml's backends Corral knows how to provision. */
export type Backend = 'cpu' | 'cuda' | 'rocm' | 'vulkan' | 'metal';
export type GpuBackend = Exclude<Backend, 'cpu'>;
export const BACKENDS: readonly Backend[] = ['cuda', 'rocm', 'metal', 'vulkan', 'cpu'];
export const GPU_BACKENDS: readonly GpuBackend[] = ['cuda', 'rocm', 'metal', 'vulkan'];

export function isBackend(value: string): value is Backend {
  return (BACKENDS as readonly string[]).includes(value);
}

export interface Gpu {
  /** The backend whose tool reported it: nvidia-smi → cuda, rocminfo → rocm, vulkaninfo → vulkan. */
  backend: GpuBackend;
  name: string;
  vramBytes?: number | undefined;
  /** NVIDIA compute capability ("8.6") or AMD ISA ("gfx1100"): what a build targets. */
  arch?: string | undefined;
}

export interface Toolkit {
  /** Whether a build with this backend can be configured here. */
  ready: boolean;
  /** What was found, or what is missing, in words for `corral doctor`. */
  detail: string;
  /** The exact thing to install when not ready. */
  fix?: string | undefined;
  /** The compiler found (nvcc, hipcc), for cmake when it is not on PATH. */
  compiler?: string | undefined;
}

export interface Machine {
  platform: NodeJS.Platform;
  arch: string;
  gpus: Gpu[];
  toolkits: Record<GpuBackend, Toolkit>;
}

export interface DetectOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  arch?: string;
  /** Where a CUDA toolkit is looked for besides PATH and CUDA_PATH. */
  cudaRoots?: string[];
  /** Where ROCm is looked for besides PATH and ROCM_PATH. */
  rocmRoots?: string[];
  /** Where Vulkan headers are looked for besides VULKAN_SDK. */
  includeDirs?: string[];
  /** Check only the toolkits of backends a GPU was found for (what a gateway start needs). */
  onlyFoundGpus?: boolean;
}

const TOOL_TIMEOUT_MS = 5_000;

export const FIXES: Record<GpuBackend, string> = {
  cuda:
    'install the CUDA toolkit with cuBLAS (Ubuntu: apt install nvidia-cuda-toolkit, ' +
    'or NVIDIA\'s "cuda-toolkit" package) or set CUDA_PATH',
  rocm: 'install ROCm\'s HIP SDK (hipcc, hipBLAS, rocBLAS; AMD\'s "rocm-hip-sdk" package) or set ROCM_PATH',
  vulkan: 'install the Vulkan headers and the glslc shader compiler (Debian/Ubuntu: apt install libvulkan-dev glslc)',
  metal: 'Metal needs macOS on Apple silicon',
};

async function exists(file: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(file, mode);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH, then in the given directories. */
export async function findTool(
  name: string,
  env: NodeJS.ProcessEnv,
  extraDirs: string[] = [],
): Promise<string | undefined> {
  const dirs = [...(env.PATH ?? '').split(delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (await exists(candidate, constants.X_OK)) return candidate;
  }
  return undefined;
}

/** `nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader,nounits` lines. */
export function parseNvidiaSmi(stdout: string): Gpu[] {
  return stdout
    .split('\n')
    .map((l) => l.split(',').map((s) => s.trim()))
    .filter((f) => f.length >= 2 && f[0])
    .map(([name = '', mib, cap]) => ({
      backend: 'cuda' as const,
      name,
      vramBytes: Number.isFinite(Number(mib)) ? Number(mib) * 1024 * 1024 : undefined,
      arch: cap && /^\d+\.\d+$/.test(cap) ? cap : undefined,
    }));
}

/** GPU agents from `rocminfo`: each agent block has "Name: gfxNNNN", "Marketing Name:" and "Device Type: GPU". */
export function parseRocminfo(stdout: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const block of stdout.split(/\n\*{3,}\s*\n/)) {
    if (!/Device Type:\s+GPU/.test(block)) continue;
    const isa = /^\s*Name:\s+(gfx\w+)/m.exec(block)?.[1];
    const name = /Marketing Name:\s+(.+)/.exec(block)?.[1]?.trim();
    gpus.push({ backend: 'rocm', name: name || isa || 'AMD GPU', arch: isa });
  }
  return gpus;
}

/** Devices from `vulkaninfo --summary`, without software rasterisers (llvmpipe reports a CPU device type). */
export function parseVulkaninfo(stdout: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const block of stdout.split(/\nGPU\d+:/).slice(1)) {
    const type = /deviceType\s*=\s*(\S+)/.exec(block)?.[1] ?? '';
    const name = /deviceName\s*=\s*(.+)/.exec(block)?.[1]?.trim();
    if (!name || type.includes('CPU')) continue;
    gpus.push({ backend: 'vulkan', name });
  }
  return gpus;
}

async function probe(tool: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const r = await runCommand(tool, args, TOOL_TIMEOUT_MS, env);
  return r.exitCode === 0 ? r.stdout : undefined;
}

async function cudaToolkit(env: NodeJS.ProcessEnv, roots: string[]): Promise<Toolkit> {
  const dirs = [env.CUDA_PATH, ...roots].filter((d): d is string => !!d).map((d) => join(d, 'bin'));
  const nvcc = await findTool('nvcc', env, dirs);
  if (!nvcc) return { ready: false, detail: 'nvcc not found (PATH, CUDA_PATH, /usr/local/cuda)', fix: FIXES.cuda };
  const version = /release ([\d.]+)/.exec((await probe(nvcc, ['--version'], env)) ?? '')?.[1];
  const found = `nvcc ${version ?? '(version unknown)'} at ${nvcc}`;
  // llama.cpp's CUDA backend needs cuBLAS too; a compiler-only install (pip's nvidia-cuda-nvcc) cannot build it.
  const candidates = [env.CUDA_PATH, dirname(dirname(nvcc)), ...roots].filter((d): d is string => !!d);
  for (const root of candidates) {
    if (await exists(join(root, 'include', 'cublas_v2.h'))) return { ready: true, detail: found, compiler: nvcc };
  }
  return { ready: false, detail: `${found}, but no cuBLAS (include/cublas_v2.h)`, fix: FIXES.cuda };
}

async function rocmToolkit(env: NodeJS.ProcessEnv, roots: string[]): Promise<Toolkit> {
  const dirs = [env.ROCM_PATH, env.HIP_PATH, ...roots].filter((d): d is string => !!d).map((d) => join(d, 'bin'));
  const hipcc = await findTool('hipcc', env, dirs);
  if (!hipcc) return { ready: false, detail: 'hipcc not found (PATH, ROCM_PATH, /opt/rocm)', fix: FIXES.rocm };
  return { ready: true, detail: `hipcc at ${hipcc}`, compiler: hipcc };
}

async function vulkanToolkit(env: NodeJS.ProcessEnv, includeDirs: string[]): Promise<Toolkit> {
  const glslc = await findTool('glslc', env, env.VULKAN_SDK ? [join(env.VULKAN_SDK, 'bin')] : []);
  const dirs = [...(env.VULKAN_SDK ? [join(env.VULKAN_SDK, 'include')] : []), ...includeDirs];
  let header: string | undefined;
  for (const d of dirs) if (!header && (await exists(join(d, 'vulkan', 'vulkan.h')))) header = join(d, 'vulkan');
  const missing = [glslc ? undefined : 'glslc', header ? undefined : 'vulkan/vulkan.h'].filter(Boolean);
  if (missing.length > 0) return { ready: false, detail: `${missing.join(' and ')} not found`, fix: FIXES.vulkan };
  return { ready: true, detail: `glslc at ${glslc}, headers in ${header}` };
}

/**
 * The GPUs on this machine and which backends' toolkits are installed. Every probe is optional:
 * a tool that is absent, fails or hangs means "not found", never an error.
 */
export async function detectMachine(opts: DetectOptions = {}): Promise<Machine> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  const cudaRoots = opts.cudaRoots ?? ['/usr/local/cuda'];
  const rocmRoots = opts.rocmRoots ?? ['/opt/rocm'];
  const [nvidia, amd, vulkan] = await Promise.all([
    probe('nvidia-smi', ['--query-gpu=name,memory.total,compute_cap', '--format=csv,noheader,nounits'], env),
    probe('rocminfo', [], env),
    probe('vulkaninfo', ['--summary'], env),
  ]);
  const appleSilicon = platform === 'darwin' && arch === 'arm64';
  const gpus = [
    ...parseNvidiaSmi(nvidia ?? ''),
    ...parseRocminfo(amd ?? ''),
    ...parseVulkaninfo(vulkan ?? ''),
    ...(appleSilicon ? [{ backend: 'metal' as const, name: 'Apple silicon GPU' }] : []),
  ];
  const check = (b: GpuBackend, probe: () => Promise<Toolkit>): Promise<Toolkit> =>
    !opts.onlyFoundGpus || gpus.some((g) => g.backend === b)
      ? probe()
      : Promise.resolve({ ready: false, detail: `not checked (no ${b} GPU found)` });
  const [cuda, rocm, vk] = await Promise.all([
    check('cuda', () => cudaToolkit(env, cudaRoots)),
    check('rocm', () => rocmToolkit(env, rocmRoots)),
    check('vulkan', () => vulkanToolkit(env, opts.includeDirs ?? ['/usr/include', '/usr/local/include'])),
  ]);
  const metal: Toolkit = appleSilicon
    ? { ready: true, detail: 'macOS on Apple silicon' }
    : { ready: false, detail: 'not macOS on Apple silicon', fix: FIXES.metal };
  return { platform, arch, gpus, toolkits: { cuda, rocm, vulkan: vk, metal } };
}

/** The backends this machine has a GPU for, best first (a Vulkan listing of an NVIDIA card comes after CUDA). */
export function gpuBackends(machine: Machine): GpuBackend[] {
  return GPU_BACKENDS.filter((b) => machine.gpus.some((g) => g.backend === b));
}

/** Total VRAM of the GPUs the backend drives, in bytes (0 when the tools do not say). */
export function vramBytes(machine: Machine, backend: Backend): number {
  return machine.gpus.filter((g) => g.backend === backend).reduce((sum, g) => sum + (g.vramBytes ?? 0), 0);
}
