import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backendStatus, deviceBackend } from '../../src/provision/backend-status.js';
import type { Machine } from '../../src/provision/detect.js';
import type { ResolvedBinary } from '../../src/provision/llama-binary.js';
import { machineEnv, NVIDIA_SMI, standIn } from './stand-ins.js';

const absent = { ready: false, detail: 'nvcc not found', fix: 'install the CUDA toolkit' };
const nvidia: Machine = {
  platform: 'linux',
  arch: 'x64',
  gpus: [{ backend: 'cuda', name: 'NVIDIA GeForce RTX 3090', arch: '8.6' }],
  toolkits: { cuda: absent, rocm: absent, vulkan: absent, metal: absent },
};
const cached: ResolvedBinary = { path: '/cache/v0.5.0-cpu/llama-server', source: 'cache', reason: 'provisioned' };
const status = (over: Partial<Parameters<typeof backendStatus>[0]>) =>
  backendStatus({ binary: cached, devices: [], machine: nvidia, fits: true, unloadable: [], ...over });

describe('what the running llama-server computes on', () => {
  it('names the backend from the devices it lists and offloads with its own fitting', () => {
    const s = status({ devices: ['CUDA0: NVIDIA GeForce RTX 3090 (24135 MiB, 23000 MiB free)'] });
    expect(s).toMatchObject({ name: 'cuda', gpuLayers: 'auto', warnings: [] });
    expect(s.description).toBe('cuda (CUDA0: NVIDIA GeForce RTX 3090 (24135 MiB, 23000 MiB free))');
    // A binary without --fit gets every layer.
    expect(status({ devices: ['Vulkan0: AMD Radeon'], fits: false }).gpuLayers).toBe('999');
    expect(['Metal: Apple M2', 'ROCm0: gfx1100'].map(deviceBackend)).toEqual(['metal', 'rocm']);
  });

  it('a CPU build on a machine with a GPU is a warning with the command that fixes it', () => {
    const s = status({});
    expect(s.name).toBe('cpu');
    expect(s.gpuLayers).toBeUndefined();
    expect(s.warnings).toEqual([
      'GPU found (NVIDIA GeForce RTX 3090), but /cache/v0.5.0-cpu/llama-server runs on the CPU only: ' +
        'run `corral provision --backend cuda` (for a build from source: install the CUDA toolkit with cuBLAS ' +
        '(Ubuntu: apt install nvidia-cuda-toolkit, or NVIDIA\'s "cuda-toolkit" package) or set CUDA_PATH)',
    ]);
  });

  it("a configured binary is the operator's: the fix names the setting", () => {
    const s = status({ binary: { path: '/opt/llama-server', source: 'config', reason: 'config' } });
    expect(s.warnings[0]).toContain('it comes from llama_server.binary: point that at a llama-server built for cuda');
  });

  it('a GPU module that cannot load names the missing libraries', () => {
    const s = status({
      devices: [],
      unloadable: [{ module: 'libggml-cuda.so', missing: ['libcublas.so.13', 'libcuda.so.1'] }],
    });
    expect(s.warnings[0]).toBe(
      'libggml-cuda.so beside /cache/v0.5.0-cpu/llama-server cannot load: libcublas.so.13, libcuda.so.1 not found ' +
        '(install the NVIDIA driver)',
    );
  });

  it('no warning without a GPU, and none when the binary says nothing', () => {
    expect(status({ machine: { ...nvidia, gpus: [] } }).warnings).toEqual([]);
    expect(status({ devices: undefined })).toMatchObject({ name: 'unknown', warnings: [] });
  });
});

describe('corral doctor on a machine with an NVIDIA card', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'corral-doctor-gpu-'));
    await mkdir(join(root, 'work'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const doctor = (env: NodeJS.ProcessEnv) =>
    execa(process.execPath, [join(process.cwd(), 'dist', 'src', 'cli.js'), 'doctor'], {
      cwd: join(root, 'work'),
      env: { ...env, CORRAL_LLAMA_SERVER: inject('fixtures').llamaServer },
      extendEnv: false,
      reject: false,
    });

  it('prints the card and warns that the CPU binary cannot use it, with the fix', async () => {
    const m = machineEnv(root);
    await standIn(m.bin, 'nvidia-smi', NVIDIA_SMI);
    const run = await doctor(m.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^gpu: +NVIDIA GeForce RTX 3090 \(cuda 8\.6, 24\.0 GiB\)$/m);
    expect(run.stdout).toMatch(/^ +runs on: +the CPU only$/m);
    const warning = run.stdout.split('\n').find((l) => l.startsWith('warning:'));
    expect(warning).toMatch(
      /GPU found \(NVIDIA GeForce RTX 3090, NVIDIA GeForce RTX 4090\), but .* runs on the CPU only/,
    );
    expect(warning).toContain(
      'it comes from CORRAL_LLAMA_SERVER: point that at a llama-server built for cuda, ' +
        'or drop it and run `corral provision --backend cuda`',
    );
  });

  it('without a GPU (and with the right settings) it warns about nothing', async () => {
    const run = await doctor(machineEnv(join(root, 'plain')).env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^gpus: +none found/m);
    expect(run.stdout).not.toMatch(/warning|started without/i);
  });
});
