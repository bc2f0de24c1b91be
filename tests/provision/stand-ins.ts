import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes an executable shell script `name` into `dir` that prints `stdout` and exits 0. */
export async function standIn(dir: string, name: string, stdout: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, name);
  await writeFile(file, `#!/bin/sh\ncat <<'EOF'\n${stdout}\nEOF\n`);
  await chmod(file, 0o755);
  return file;
}

/** What nvidia-smi prints for --query-gpu=name,memory.total,compute_cap --format=csv,noheader,nounits. */
export const NVIDIA_SMI = 'NVIDIA GeForce RTX 3090, 24576, 8.6\nNVIDIA GeForce RTX 4090, 24564, 8.9';

export const NVCC_VERSION = 'nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.4, V12.4.131';

export const VULKANINFO_SUMMARY = `==========
VULKANINFO
==========

Devices:
========
GPU0:
	apiVersion         = 1.3.255
	deviceType         = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
	deviceName         = AMD Radeon RX 7900 XTX (RADV NAVI31)
GPU1:
	apiVersion         = 1.3.255
	deviceType         = PHYSICAL_DEVICE_TYPE_CPU
	deviceName         = llvmpipe (LLVM 15.0.6, 256 bits)`;

export const ROCMINFO = `*******
Agent 1
*******
  Name:                    AMD Ryzen 9 7950X
  Marketing Name:          AMD Ryzen 9 7950X
  Device Type:             CPU
*******
Agent 2
*******
  Name:                    gfx1100
  Marketing Name:          AMD Radeon RX 7900 XTX
  Device Type:             GPU`;

/**
 * A temporary machine: a bin directory for stand-in tools (the only PATH entry besides the system's
 * shell utilities, so the host's own nvcc or nvidia-smi never answer) and the options that keep
 * detection away from the host's /usr/local/cuda, /opt/rocm and /usr/include.
 */
export function machineEnv(root: string, extra: NodeJS.ProcessEnv = {}) {
  const bin = join(root, 'bin');
  return {
    bin,
    env: { PATH: `${bin}:/usr/bin:/bin`, XDG_CACHE_HOME: join(root, 'cache'), HOME: root, ...extra },
    detect: { cudaRoots: [], rocmRoots: [], includeDirs: [join(root, 'include')] },
  };
}
