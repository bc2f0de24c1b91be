import { dirname } from 'node:path';
import { type Backend, FIXES, type GpuBackend, gpuBackends, type Machine } from './detect.js';

/** cmake options every build from source uses (portable CPU code, no network at build time, static programs). */
export const BASE_CMAKE_FLAGS = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DGGML_NATIVE=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_SERVER=ON',
  '-DLLAMA_BUILD_TOOLS=ON',
  '-DBUILD_SHARED_LIBS=OFF',
  // rpc-server, and llama-server's --rpc: a model split over several hosts.
  '-DGGML_RPC=ON',
];

/** The options that name the backend (for progress lines and `doctor`), or "CPU". */
export function backendFlagsSummary(flags: readonly string[]): string {
  return flags.filter((f) => /GGML_(CUDA|HIP|VULKAN|METAL)=|ARCH|TARGETS/.test(f)).join(' ') || 'CPU';
}

/** The cmake targets of the programs a provisioned directory holds (rpc-server's target has a ggml- prefix). */
export const CMAKE_TARGETS = {
  'llama-server': 'llama-server',
  'llama-quantize': 'llama-quantize',
  'rpc-server': 'ggml-rpc-server',
};

/**
 * CMAKE_CUDA_ARCHITECTURES for the detected cards: compute capability "8.6" → "86". Building for the
 * cards present takes minutes; llama.cpp's default list compiles every kernel a dozen times.
 * undefined when nvidia-smi did not report capabilities (old drivers), so cmake's "native" decides.
 */
export function cudaArchitectures(machine: Machine): string | undefined {
  const caps = machine.gpus.filter((g) => g.backend === 'cuda' && g.arch).map((g) => g.arch!.replace('.', ''));
  return caps.length > 0 ? [...new Set(caps)].sort().join(';') : undefined;
}

export function hipTargets(machine: Machine): string | undefined {
  const isas = machine.gpus.filter((g) => g.backend === 'rocm' && g.arch).map((g) => g.arch!);
  return isas.length > 0 ? [...new Set(isas)].sort().join(';') : undefined;
}

export interface BackendBuild {
  flags: string[];
  /** Environment the configure step needs (ROCm's compiler). */
  env: Record<string, string>;
}

/** The cmake options (and environment) that build llama.cpp for one backend on this machine. */
export function backendBuild(backend: Backend, machine: Machine): BackendBuild {
  switch (backend) {
    case 'cpu':
      return { flags: [], env: {} };
    case 'cuda': {
      const nvcc = machine.toolkits.cuda.compiler;
      const archs = `-DCMAKE_CUDA_ARCHITECTURES=${cudaArchitectures(machine) ?? 'native'}`;
      return { flags: ['-DGGML_CUDA=ON', archs, ...(nvcc ? [`-DCMAKE_CUDA_COMPILER=${nvcc}`] : [])], env: {} };
    }
    case 'rocm': {
      const targets = hipTargets(machine);
      const hipcc = machine.toolkits.rocm.compiler;
      // ROCm's documented way: its own clang as the HIP compiler, found from hipcc's install root.
      const root = hipcc ? dirname(dirname(hipcc)) : undefined;
      return {
        flags: ['-DGGML_HIP=ON', ...(targets ? [`-DGPU_TARGETS=${targets}`] : [])],
        env: root ? { HIPCXX: `${root}/llvm/bin/clang`, HIP_PATH: root } : {},
      };
    }
    case 'vulkan':
      return { flags: ['-DGGML_VULKAN=ON'], env: {} };
    case 'metal':
      return { flags: ['-DGGML_METAL=ON', '-DGGML_METAL_EMBED_LIBRARY=ON'], env: {} };
  }
}

/**
 * Minutes of one core to build, measured on this project's 2-core machines for the CPU build (about 12);
 * the GPU backends' kernels are estimates for one architecture. Divided by the cores a build gets.
 */
const CORE_MINUTES: Record<Backend, number> = { cpu: 12, vulkan: 20, metal: 14, cuda: 60, rocm: 60 };
/** The server alone against prebuilt libraries. */
const CORE_MINUTES_ON_LIBS = 6;

export function estimateSeconds(backend: Backend, cores: number, onPrebuiltLibs: boolean): number {
  const minutes = onPrebuiltLibs ? CORE_MINUTES_ON_LIBS : CORE_MINUTES[backend];
  return Math.round((minutes * 60) / Math.max(1, Math.min(cores, 16)));
}

export interface BackendChoice {
  backend: Backend;
  /** Why, and what the user could do for a better one. */
  notes: string[];
}

/**
 * The backend to provision: the one asked for, or the best GPU backend this machine has a card for.
 * A GPU without a way to use it falls back to the CPU with a note saying how to fix that; whether
 * an npm package can supply the backend without a toolkit is up to the caller (`npmBackendFor`).
 */
export function chooseBackend(
  machine: Machine,
  requested: Backend | 'auto',
  canUseWithoutToolkit: (b: GpuBackend) => boolean,
): BackendChoice {
  if (requested !== 'auto') return { backend: requested, notes: [`backend ${requested} was asked for`] };
  const notes: string[] = [];
  for (const b of gpuBackends(machine)) {
    const names = machine.gpus.filter((g) => g.backend === b).map((g) => g.name);
    if (machine.toolkits[b].ready || canUseWithoutToolkit(b)) {
      return { backend: b, notes: [`${names.join(', ')} found: using ${b}`] };
    }
    notes.push(`${names.join(', ')} found, but ${machine.toolkits[b].detail}: ${FIXES[b]}`);
  }
  return { backend: 'cpu', notes: notes.length ? notes : ['no GPU found: CPU only'] };
}
