import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cacheRoot, installDir, LLAMA_SOURCE_TAG, type Manifest, stagingDir, backendDir } from './cache.js';
import type { Backend } from './detect.js';
import type { Progress } from './progress.js';
import { ProvisionError, runTool } from './run-tool.js';

/** GitHub's API for llama.cpp's releases; its asset list carries each file's sha256 ("digest"). */
export const DEFAULT_RELEASE_URL = 'https://api.github.com/repos/ggml-org/llama.cpp';

export interface ReleaseAsset {
  name: string;
  browser_download_url: string;
  size: number;
  /** "sha256:<hex>", as GitHub publishes it. */
  digest?: string | null;
}

/** The archive names llama.cpp publishes per platform and backend (Linux CPU and Vulkan, macOS on Apple silicon). */
export function assetPlatform(platform: string, arch: string, backend: Backend): string | undefined {
  if (platform === 'linux' && arch === 'x64') {
    return backend === 'cpu' ? 'ubuntu-x64' : backend === 'vulkan' ? 'ubuntu-vulkan-x64' : undefined;
  }
  if (platform === 'darwin' && arch === 'arm64' && (backend === 'metal' || backend === 'cpu')) return 'macos-arm64';
  return undefined;
}

export function pickAsset(assets: ReleaseAsset[], tag: string, platformName: string): ReleaseAsset | undefined {
  const stem = `llama-${tag}-bin-${platformName}`;
  return assets.find((a) => a.name === `${stem}.tar.gz`) ?? assets.find((a) => a.name === `${stem}.zip`);
}

const sha256File = async (file: string): Promise<string> => {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
};

/**
 * Downloads `url` to `file`, continuing a partial file with an HTTP Range request (after a dropped
 * connection, in this run or an earlier one). A server that ignores Range answers 200: start over.
 */
export async function download(url: string, file: string, size: number, progress: Progress, attempts = 5) {
  for (let attempt = 1; ; attempt++) {
    const have = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if (size > 0 && have === size) return;
    // Opened before the request, and nothing awaited between the answer's head and reading its body:
    // chunks still queued in a stream that then errors are dropped with the error.
    // Positional writes (not O_APPEND, where Linux ignores the position): a 200 rewrites from byte 0.
    const fh = await open(file, constants.O_RDWR | constants.O_CREAT);
    try {
      const res = await fetch(url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, redirect: 'follow' });
      if (res.status !== 200 && res.status !== 206) throw new ProvisionError(`${url} answered ${res.status}`);
      if (have > 0) progress(res.status === 206 ? `resuming at byte ${have}` : 'the server does not resume: from 0');
      let at = res.status === 206 ? have : 0;
      try {
        for await (const chunk of Readable.fromWeb(res.body as never) as AsyncIterable<Uint8Array>) {
          await fh.write(chunk, 0, chunk.length, at);
          at += chunk.length;
        }
      } finally {
        // A full answer (200) replaces what was there: cut off anything beyond what it wrote.
        if (res.status === 200) await fh.truncate(at);
      }
      if (size <= 0 || at === size) return;
      throw new Error(`connection ended at byte ${at} of ${size}`);
    } catch (err) {
      if (err instanceof ProvisionError || attempt >= attempts) throw err;
      progress(`download interrupted (${(err as Error).message}); retrying`);
    } finally {
      await fh.close();
    }
  }
}

async function findFile(dir: string, name: string): Promise<string | undefined> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isFile() && entry.name === name) return path;
    if (entry.isDirectory()) {
      const found = await findFile(path, name);
      if (found) return found;
    }
  }
  return undefined;
}

export interface ReleaseOptions {
  backend: Backend;
  env: NodeJS.ProcessEnv;
  progress: Progress;
  releaseUrl?: string | undefined;
  platform?: string;
  arch?: string;
}

/** `corral provision --prebuilt`: llama.cpp's own release archive, checked against its published sha256. */
export async function provisionRelease(opts: ReleaseOptions): Promise<{ dir: string; manifest: Manifest }> {
  const { backend, env, progress } = opts;
  const platformName = assetPlatform(opts.platform ?? process.platform, opts.arch ?? process.arch, backend);
  if (!platformName) throw new ProvisionError(`llama.cpp publishes no ${backend} build for this platform`);
  const base = (opts.releaseUrl ?? env.CORRAL_RELEASE_URL ?? DEFAULT_RELEASE_URL).replace(/\/$/, '');
  const meta = await fetch(`${base}/releases/tags/${LLAMA_SOURCE_TAG}`, { headers: { accept: 'application/json' } });
  if (!meta.ok) throw new ProvisionError(`${base}: release ${LLAMA_SOURCE_TAG} not found (${meta.status})`);
  const { assets = [] } = (await meta.json()) as { assets?: ReleaseAsset[] };
  const asset = pickAsset(assets, LLAMA_SOURCE_TAG, platformName);
  if (!asset) throw new ProvisionError(`release ${LLAMA_SOURCE_TAG} has no llama-*-bin-${platformName} archive`);
  const expected = /^sha256:([0-9a-f]{64})$/.exec(asset.digest ?? '')?.[1];
  if (!expected) throw new ProvisionError(`${asset.name} has no published sha256: refusing to install it unchecked`);

  const file = join(cacheRoot(env), 'downloads', asset.name);
  await mkdir(dirname(file), { recursive: true });
  progress(`downloading ${asset.name} (${Math.round(asset.size / 1e6)} MB)`);
  await download(asset.browser_download_url, file, asset.size, progress);
  const actual = await sha256File(file);
  if (actual !== expected) {
    await rm(file, { force: true });
    throw new ProvisionError(
      `${asset.name}: sha256 ${actual} is not the published ${expected}; the download was removed`,
    );
  }
  const started = Date.now();
  const dir = backendDir(backend, env);
  const staging = await stagingDir(dir);
  const work = await mkdtemp(join(tmpdir(), 'corral-release-'));
  try {
    const unpack = asset.name.endsWith('.zip')
      ? ['unzip', ['-q', file, '-d', work]]
      : ['tar', ['-xzf', file, '-C', work]];
    await runTool(unpack[0] as string, unpack[1] as string[], { cwd: work });
    const server = await findFile(work, 'llama-server');
    if (!server) throw new ProvisionError(`${asset.name} holds no llama-server`);
    // The programs find their shared libraries beside them ($ORIGIN), so the whole directory moves.
    await cp(dirname(server), staging, { recursive: true });
    for (const f of ['llama-server', 'llama-quantize', 'rpc-server'])
      await chmod(join(staging, f), 0o755).catch(() => {});
    const tools = (await readdir(staging)).filter((f) => ['llama-server', 'llama-quantize', 'rpc-server'].includes(f));
    const manifest: Manifest = {
      version: LLAMA_SOURCE_TAG,
      backend,
      route: 'release',
      origin: [asset.browser_download_url],
      cmakeFlags: [],
      tools: tools as Manifest['tools'],
      builtAt: new Date().toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
    };
    await installDir(staging, dir, manifest);
    await rm(file, { force: true });
    progress(`llama.cpp ${LLAMA_SOURCE_TAG} (${backend}, release archive) ready in ${dir}`);
    return { dir, manifest };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
