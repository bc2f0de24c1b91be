import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runCommand } from '../runner/command.js';
import { offloadDevices } from '../runner/devices.js';
import { type Backend, detectMachine, FIXES, type GpuBackend, gpuBackends, type Machine } from './detect.js';
import type { ResolvedBinary } from './llama-binary.js';

/** Which backend the running llama-server computes on, and what is wrong with that. */
export interface BackendStatus {
  /** cuda, rocm, vulkan, metal or cpu, from the devices the binary lists; "unknown" when it does not say. */
  name: Backend | 'unknown';
  /** For the startup log and the System page: "cuda (CUDA0: NVIDIA …)" or "the CPU only". */
  description: string;
  devices: string[] | undefined;
  /** The -ngl value models get when they do not set one; undefined without a GPU device. */
  gpuLayers: string | undefined;
  warnings: string[];
}

const DEVICE_BACKENDS: [RegExp, Backend][] = [
  [/^CUDA/i, 'cuda'],
  [/^(ROCm|HIP)/i, 'rocm'],
  [/^Vulkan/i, 'vulkan'],
  [/^(Metal|MTL)/i, 'metal'],
];

export function deviceBackend(device: string): Backend | undefined {
  return DEVICE_BACKENDS.find(([re]) => re.test(device))?.[1];
}

/** `ldd` on each GPU module beside the binary: the libraries it needs that this machine lacks. */
export async function unloadableModules(binary: string): Promise<{ module: string; missing: string[] }[]> {
  const dir = dirname(binary);
  const modules = (await readdir(dir).catch(() => [] as string[])).filter((f) =>
    /^libggml-(cuda|hip|vulkan|metal)\.so$/.test(f),
  );
  const out: { module: string; missing: string[] }[] = [];
  for (const module of modules) {
    const r = await runCommand('ldd', [join(dir, module)], 5_000);
    const missing = [...r.stdout.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
    if (missing.length > 0) out.push({ module, missing });
  }
  return out;
}

interface StatusInput {
  binary: ResolvedBinary;
  devices: string[] | undefined;
  machine: Machine;
  /** Whether the binary's --help has --fit (llama-server's own fitting of layers into free VRAM). */
  fits: boolean;
  unloadable: { module: string; missing: string[] }[];
}

/** The backend a binary runs on, and a warning with the exact fix when a GPU is here that it cannot use. */
export function backendStatus(input: StatusInput): BackendStatus {
  const { binary, devices, machine } = input;
  const gpuDevices = devices ?? [];
  const name: Backend | 'unknown' =
    devices === undefined ? 'unknown' : (gpuDevices.map(deviceBackend).find((b) => b !== undefined) ?? 'cpu');
  const description =
    name === 'unknown'
      ? 'an unknown backend (the binary does not answer --list-devices)'
      : name === 'cpu'
        ? 'the CPU only'
        : `${name} (${gpuDevices.join('; ')})`;
  const warnings: string[] = [];
  for (const u of input.unloadable) {
    warnings.push(
      `${u.module} beside ${binary.path} cannot load: ${u.missing.join(', ')} not found (${runtimeFix(u)})`,
    );
  }
  const usable = gpuBackends(machine);
  if (devices !== undefined && gpuDevices.length === 0 && usable.length > 0) {
    const gpus = machine.gpus.map((g) => g.name).join(', ');
    warnings.push(
      `GPU found (${gpus}), but ${binary.path} runs on the CPU only: ${binaryFix(binary, usable[0]!, machine)}`,
    );
  }
  const gpuLayers = gpuDevices.length > 0 ? (input.fits ? 'auto' : '999') : undefined;
  return { name, description, devices, gpuLayers, warnings };
}

function runtimeFix(u: { module: string; missing: string[] }): string {
  if (u.missing.includes('libcuda.so.1')) return 'install the NVIDIA driver';
  if (u.module.includes('cuda')) return 'install the CUDA runtime libraries (cudart and cuBLAS) of that version';
  if (u.module.includes('vulkan')) return 'install the Vulkan loader (Debian/Ubuntu: apt install libvulkan1)';
  return 'install the GPU runtime it names';
}

function binaryFix(binary: ResolvedBinary, backend: GpuBackend, machine: Machine): string {
  const provision = `corral provision --backend ${backend}`;
  const toolkit = machine.toolkits[backend].ready ? '' : ` (for a build from source: ${FIXES[backend]})`;
  if (binary.source === 'cache') return `run \`${provision}\`${toolkit}`;
  const setting =
    binary.source === 'config' ? 'llama_server.binary' : binary.source === 'env' ? 'CORRAL_LLAMA_SERVER' : 'PATH';
  const point = `point that at a llama-server built for ${backend}`;
  return `it comes from ${setting}: ${point}, or drop it and run \`${provision}\`${toolkit}`;
}

/** Everything backendStatus needs, gathered in parallel (a few short processes). */
export async function inspectBackend(
  binary: ResolvedBinary,
  env: NodeJS.ProcessEnv = process.env,
  detected?: Machine,
): Promise<{ status: BackendStatus; machine: Machine }> {
  const [devices, machine, unloadable] = await Promise.all([
    offloadDevices(binary.path),
    detected ?? detectMachine({ env, onlyFoundGpus: true }),
    unloadableModules(binary.path),
  ]);
  const fits =
    devices !== undefined && devices.length > 0
      ? (await runCommand(binary.path, ['--help'], 10_000)).stdout.includes('--fit')
      : false;
  return { status: backendStatus({ binary, devices, machine, fits, unloadable }), machine };
}
