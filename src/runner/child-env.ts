/**
 * The environment a llama-server child gets: what it and the GPU runtimes it loads read, and nothing
 * else, so the gateway's secrets (CORRAL_ADMIN_PASSWORD, tokens, cloud credentials) never reach a
 * child's /proc/<pid>/environ or anything it spawns.
 */
const NAMES = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LD_LIBRARY_PATH',
  'XDG_CACHE_HOME',
]);

/** llama.cpp, ggml, OpenMP and BLAS threads, CUDA, ROCm/HIP, Vulkan, SYCL/Level Zero, MUSA. */
const PREFIXES = [
  'LC_',
  'LLAMA_',
  'GGML_',
  'OMP_',
  'GOMP_',
  'KMP_',
  'MKL_',
  'OPENBLAS_',
  'CUDA_',
  'NVIDIA_',
  '__NV_',
  'HIP_',
  'ROCR_',
  'HSA_',
  'GPU_',
  'VK_',
  'ZE_',
  'ONEAPI_',
  'SYCL_',
  'MUSA_',
];

/** Set by Corral itself per child (the TCP fallback's key), or would keep Corral from reaching it. */
const NEVER = new Set(['LLAMA_API_KEY', 'LLAMA_ARG_API_KEY_FILE', 'LLAMA_ARG_HOST', 'LLAMA_ARG_PORT']);

/**
 * The allowed part of `env`. `extra` names more variables to pass (`NAME`, or `PREFIX*`), for a runtime
 * this list does not know (config `llama_server.pass_env`).
 */
export function childEnvironment(env: NodeJS.ProcessEnv, extra: readonly string[] = []): NodeJS.ProcessEnv {
  const names = new Set(extra.filter((e) => !e.endsWith('*')));
  const prefixes = [...PREFIXES, ...extra.filter((e) => e.endsWith('*')).map((e) => e.slice(0, -1))];
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || NEVER.has(name)) continue;
    if (NAMES.has(name) || names.has(name) || prefixes.some((p) => name.startsWith(p))) out[name] = value;
  }
  return out;
}
