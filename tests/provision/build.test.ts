import { access, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheRoot, sourceTarball } from '../../src/provision/cache.js';
import type { Machine } from '../../src/provision/detect.js';
import { fetchPlatformPackage } from '../../src/provision/npm-libs.js';
import { provision } from '../../src/provision/provision.js';

let root: string;
let env: NodeJS.ProcessEnv;

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'corral-build-'));
  env = { ...process.env, XDG_CACHE_HOME: join(root, 'cache') };
  // The source tarball from the user's cache, when there is one, saves fetching 36 MB per run.
  const shared = sourceTarball(process.env);
  if (await exists(shared)) {
    await mkdir(join(cacheRoot(env), 'sources'), { recursive: true });
    await symlink(shared, sourceTarball(env));
  }
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** A machine with one GPU of the backend whose toolkit is missing (what the cmake run then finds). */
function machineWith(backend: 'cuda' | 'vulkan'): Machine {
  const absent = { ready: false, detail: 'not installed' };
  return {
    platform: 'linux',
    arch: 'x64',
    gpus: [{ backend, name: 'Stand-in GPU', arch: backend === 'cuda' ? '8.6' : undefined }],
    toolkits: { cuda: absent, rocm: absent, vulkan: absent, metal: absent },
  };
}

describe('a GPU build from source without its toolkit', () => {
  it('cmake -DGGML_VULKAN=ON stops at configure with the packages to install', async () => {
    const made = provision({ env, backend: 'vulkan', route: 'source', machine: machineWith('vulkan') });
    await expect(made).rejects.toThrow(
      /cmake -B build .* failed: the Vulkan toolkit is missing: .*apt install libvulkan-dev glslc/,
    );
    // Nothing half-made is left where a later lookup would find it.
    expect(await readdir(cacheRoot(env))).toEqual(['sources']);
  }, 180_000);

  it('cmake -DGGML_CUDA=ON stops at configure with what to install', async () => {
    const made = provision({ env, backend: 'cuda', route: 'source', machine: machineWith('cuda') });
    await expect(made).rejects.toThrow(
      /cmake -B build .* failed: the CUDA toolkit is missing or incomplete: install the CUDA toolkit with cuBLAS/,
    );
    expect(await exists(join(cacheRoot(env), 'v0.5.0-cuda'))).toBe(false);
  }, 180_000);
});

describe("node-llama-cpp's prebuilt libraries", () => {
  it('a package built from another llama.cpp release is refused, naming both releases', async () => {
    const work = join(root, 'packages');
    await expect(fetchPlatformPackage('linux-x64', '3.21.1', work, env)).rejects.toThrow(
      '@node-llama-cpp/linux-x64@3.21.1 was built from llama.cpp v0.4.0, but Corral builds llama-server from v0.5.0',
    );
  }, 120_000);

  it('a version that was never published is a clear error', async () => {
    await expect(fetchPlatformPackage('mac-arm64-metal', '3.22.1', join(root, 'p2'), env)).rejects.toThrow(
      /@node-llama-cpp\/mac-arm64-metal@3\.22\.1 could not be fetched from the npm registry/,
    );
  }, 120_000);
});
