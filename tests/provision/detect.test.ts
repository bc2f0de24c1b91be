import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectMachine, parseRocminfo, parseVulkaninfo } from '../../src/provision/detect.js';
import { cudaArchitectures } from '../../src/provision/plan.js';
import { planProvision } from '../../src/provision/provision.js';
import { machineEnv, NVCC_VERSION, NVIDIA_SMI, ROCMINFO, standIn, VULKANINFO_SUMMARY } from './stand-ins.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'corral-detect-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

/** A CUDA toolkit the way NVIDIA installs it: bin/nvcc and include/cublas_v2.h under one root. */
async function cudaToolkit(): Promise<string> {
  const cuda = join(root, 'cuda');
  await standIn(join(cuda, 'bin'), 'nvcc', NVCC_VERSION);
  await mkdir(join(cuda, 'include'), { recursive: true });
  await writeFile(join(cuda, 'include', 'cublas_v2.h'), '');
  return cuda;
}

describe('backend detection from the tools on PATH', () => {
  it('finds nothing on a machine without GPU tools, and provisions the CPU build', async () => {
    const m = machineEnv(root);
    const machine = await detectMachine({ env: m.env, ...m.detect, platform: 'linux', arch: 'x64' });
    expect(machine.gpus).toEqual([]);
    const plan = await planProvision({ env: m.env, machine });
    expect(plan).toMatchObject({ backend: 'cpu', route: 'npm-libs', npm: { base: 'linux-x64' } });
    expect(plan.dir).toBe(join(root, 'cache', 'corral', 'llama.cpp', 'v0.5.0-cpu'));
    expect(plan.notes).toEqual(['no GPU found: CPU only']);
  });

  it('NVIDIA cards with the CUDA toolkit: a CUDA build for exactly those cards', async () => {
    const m = machineEnv(root);
    await standIn(m.bin, 'nvidia-smi', NVIDIA_SMI);
    const cuda = await cudaToolkit();
    const machine = await detectMachine({ env: { ...m.env, CUDA_PATH: cuda }, ...m.detect });
    expect(machine.gpus.map((g) => [g.name, g.arch, g.vramBytes])).toEqual([
      ['NVIDIA GeForce RTX 3090', '8.6', 24576 * 2 ** 20],
      ['NVIDIA GeForce RTX 4090', '8.9', 24564 * 2 ** 20],
    ]);
    expect(machine.toolkits.cuda).toMatchObject({ ready: true, compiler: join(cuda, 'bin', 'nvcc') });
    expect(machine.toolkits.cuda.detail).toContain('nvcc 12.4');
    expect(cudaArchitectures(machine)).toBe('86;89');
    // No CUDA runtime libraries on this machine for the prebuilt module: built from source.
    const plan = await planProvision({ env: { ...m.env, LD_LIBRARY_PATH: join(root, 'none') }, machine });
    expect(plan.backend).toBe('cuda');
    expect(plan.dir).toBe(join(root, 'cache', 'corral', 'llama.cpp', 'v0.5.0-cuda'));
    expect(plan.cmakeFlags).toEqual(
      expect.arrayContaining([
        '-DGGML_CUDA=ON',
        '-DCMAKE_CUDA_ARCHITECTURES=86;89',
        `-DCMAKE_CUDA_COMPILER=${join(cuda, 'bin', 'nvcc')}`,
      ]),
    );
  });

  it('NVIDIA cards with only the CUDA runtime libraries: the prebuilt CUDA module, no toolkit needed', async () => {
    const m = machineEnv(root);
    await standIn(m.bin, 'nvidia-smi', NVIDIA_SMI);
    const libs = join(root, 'libs');
    await mkdir(libs);
    for (const f of ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcuda.so.1'])
      await writeFile(join(libs, f), '');
    const env = { ...m.env, LD_LIBRARY_PATH: libs };
    const machine = await detectMachine({ env, ...m.detect, platform: 'linux', arch: 'x64' });
    expect(machine.toolkits.cuda.ready).toBe(false);
    const plan = await planProvision({ env, machine });
    // CUDA 12 runtime present, not 13: the -ext package's CUDA 12 build of the module.
    expect(plan).toMatchObject({
      backend: 'cuda',
      route: 'npm-libs',
      npm: { base: 'linux-x64', gpu: { pkg: 'linux-x64-cuda-ext', file: 'fallback/libggml-cuda.so' } },
    });
  });

  it('NVIDIA cards with neither: the CPU build, and the note says what to install', async () => {
    const m = machineEnv(root);
    await standIn(m.bin, 'nvidia-smi', NVIDIA_SMI);
    await standIn(m.bin, 'nvcc', NVCC_VERSION); // a compiler without cuBLAS is not a toolkit
    const env = { ...m.env, LD_LIBRARY_PATH: join(root, 'none') };
    const machine = await detectMachine({ env, ...m.detect });
    expect(machine.toolkits.cuda).toMatchObject({ ready: false });
    expect(machine.toolkits.cuda.detail).toContain('no cuBLAS');
    const plan = await planProvision({ env, machine });
    expect(plan.backend).toBe('cpu');
    expect(plan.notes.join('\n')).toMatch(/RTX 3090.*found, but .*no cuBLAS.*install the CUDA toolkit with cuBLAS/);
    await expect(planProvision({ env, machine, backend: 'cuda' })).rejects.toThrow(/cannot provision cuda: .*needs/);
  });

  it('Vulkan: a GPU without glslc and headers is not buildable; with them it is', async () => {
    const m = machineEnv(root);
    await standIn(m.bin, 'vulkaninfo', VULKANINFO_SUMMARY);
    // No libvulkan.so.1 for the prebuilt module either: an empty library path and no ldconfig hits.
    const env = { ...m.env, LD_LIBRARY_PATH: join(root, 'none') };
    const bare = await detectMachine({ env, ...m.detect, platform: 'linux', arch: 'arm64' });
    expect(bare.gpus).toEqual([{ backend: 'vulkan', name: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' }]);
    expect(bare.toolkits.vulkan).toMatchObject({ ready: false, fix: expect.stringContaining('libvulkan-dev glslc') });
    expect((await planProvision({ env, machine: bare })).backend).toBe('cpu');

    await standIn(m.bin, 'glslc', 'glslc stand-in');
    await mkdir(join(root, 'include', 'vulkan'), { recursive: true });
    await writeFile(join(root, 'include', 'vulkan', 'vulkan.h'), '');
    const ready = await detectMachine({ env, ...m.detect, platform: 'linux', arch: 'arm64' });
    expect(ready.toolkits.vulkan.ready).toBe(true);
    const plan = await planProvision({ env, machine: ready });
    expect(plan).toMatchObject({ backend: 'vulkan', route: 'source' });
    expect(plan.cmakeFlags).toContain('-DGGML_VULKAN=ON');
    expect(plan.dir.endsWith('v0.5.0-vulkan')).toBe(true);
  });

  it('AMD: rocminfo names the ISA the HIP build targets', async () => {
    const m = machineEnv(root);
    await standIn(m.bin, 'rocminfo', ROCMINFO);
    await standIn(join(root, 'rocm', 'bin'), 'hipcc', 'HIP version: 6.1');
    const env = { ...m.env, ROCM_PATH: join(root, 'rocm') };
    const machine = await detectMachine({ env, ...m.detect });
    expect(machine.gpus).toEqual([{ backend: 'rocm', name: 'AMD Radeon RX 7900 XTX', arch: 'gfx1100' }]);
    const plan = await planProvision({ env, machine });
    expect(plan.backend).toBe('rocm');
    expect(plan.cmakeFlags).toEqual(expect.arrayContaining(['-DGGML_HIP=ON', '-DGPU_TARGETS=gfx1100']));
    expect(plan.buildEnv).toEqual({ HIPCXX: join(root, 'rocm', 'llvm', 'bin', 'clang'), HIP_PATH: join(root, 'rocm') });
  });

  it('Apple silicon is Metal without any tool', async () => {
    const m = machineEnv(root);
    const machine = await detectMachine({ env: m.env, ...m.detect, platform: 'darwin', arch: 'arm64' });
    expect(machine.gpus.map((g) => g.backend)).toEqual(['metal']);
    expect(machine.toolkits.metal.ready).toBe(true);
  });

  it('parsers skip what is not a GPU', () => {
    expect(parseVulkaninfo(VULKANINFO_SUMMARY).map((g) => g.name)).not.toContain(expect.stringContaining('llvmpipe'));
    expect(parseRocminfo(ROCMINFO)).toHaveLength(1);
  });
});
