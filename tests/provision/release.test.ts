import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backendDir, cacheRoot, readManifest } from '../../src/provision/cache.js';
import { findLlamaServer } from '../../src/provision/llama-binary.js';
import { provisionRelease } from '../../src/provision/release.js';
import { standIn } from './stand-ins.js';

const NAME = 'llama-v0.5.0-bin-ubuntu-x64.tar.gz';
let root: string;
let archive: Buffer;
let server: Server;
let base: string;
/** How the stand-in release server behaves for the next test. */
let mode: { digest?: string; dropFirst?: boolean } = {};
let ranges: (string | undefined)[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'corral-release-'));
  // The layout of llama.cpp's Linux archives: programs and their shared libraries in build/bin.
  const tree = join(root, 'tree');
  await standIn(join(tree, 'build', 'bin'), 'llama-server', 'version: 0.5.0 (release stand-in)');
  await standIn(join(tree, 'build', 'bin'), 'llama-quantize', 'usage: llama-quantize');
  await execa('tar', ['-czf', join(root, NAME), '-C', tree, 'build']);
  archive = await readFile(join(root, NAME));
  server = createServer((req, res) => {
    if (req.url === '/releases/tags/v0.5.0') {
      const digest = mode.digest ?? `sha256:${createHash('sha256').update(archive).digest('hex')}`;
      const asset = { name: NAME, size: archive.length, digest, browser_download_url: `${base}/download/${NAME}` };
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ tag_name: 'v0.5.0', assets: [asset, { ...asset, name: 'other.zip' }] }));
    }
    if (req.url !== `/download/${NAME}`) return res.writeHead(404).end();
    ranges.push(req.headers.range);
    if (mode.dropFirst && ranges.length === 1) {
      // Half the archive, then the connection drops.
      res.writeHead(200, { 'content-length': archive.length });
      return res.write(archive.subarray(0, archive.length >> 1), () => res.destroy());
    }
    const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    res.writeHead(from ? 206 : 200, {
      'content-length': archive.length - from,
      ...(from ? { 'content-range': `bytes ${from}-${archive.length - 1}/${archive.length}` } : {}),
    });
    res.end(archive.subarray(from));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await rm(root, { recursive: true, force: true });
});

let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  mode = {};
  ranges = [];
  env = { PATH: '/usr/bin:/bin', HOME: root, XDG_CACHE_HOME: await mkdtemp(join(root, 'cache-')) };
});

const opts = (progress: (l: string) => void = () => {}) => ({
  backend: 'cpu' as const,
  env,
  progress,
  releaseUrl: base,
  platform: 'linux',
  arch: 'x64',
});

describe('corral provision --prebuilt (a stand-in release server)', () => {
  it('installs a good archive into the CPU cache directory, and the resolver finds it', async () => {
    const cli = join(process.cwd(), 'dist', 'src', 'cli.js');
    const run = await execa('node', [cli, 'provision', '--prebuilt', '--backend', 'cpu', '--release-url', base], {
      env,
      reject: false,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain(`downloading ${NAME}`);
    const found = await findLlamaServer({ env });
    expect(found).toMatchObject({ path: join(backendDir('cpu', env), 'llama-server'), backend: 'cpu' });
    expect(found?.reason).toContain("llama.cpp's release archive");
    expect((await readManifest(backendDir('cpu', env)))?.tools).toEqual(['llama-quantize', 'llama-server']);
    // The archive is not kept once unpacked.
    expect(await readdir(join(cacheRoot(env), 'downloads'))).toEqual([]);
  });

  it('refuses an archive whose sha256 is not the published one, and removes it', async () => {
    mode.digest = `sha256:${'0'.repeat(64)}`;
    await expect(provisionRelease(opts())).rejects.toThrow(
      /sha256 [0-9a-f]{64} is not the published 0{64}; the download was removed/,
    );
    expect(await readdir(join(cacheRoot(env), 'downloads'))).toEqual([]);
    expect(await findLlamaServer({ env })).toBeUndefined();
  });

  it('refuses an archive without a published sha256', async () => {
    mode.digest = '';
    await expect(provisionRelease(opts())).rejects.toThrow(/has no published sha256: refusing/);
    expect(ranges).toEqual([]);
  });

  it('resumes a dropped download with a Range request', async () => {
    mode.dropFirst = true;
    const lines: string[] = [];
    await provisionRelease(opts((l) => lines.push(l)));
    expect(ranges).toEqual([undefined, `bytes=${archive.length >> 1}-`]);
    expect(lines.join('\n')).toMatch(/download interrupted .*retrying\nresuming at byte \d+/);
    const installed = await readFile(join(backendDir('cpu', env), 'llama-server'), 'utf8');
    expect(installed).toContain('release stand-in');
  });

  it('continues a partial file left by an earlier run', async () => {
    await mkdir(join(cacheRoot(env), 'downloads'), { recursive: true });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(cacheRoot(env), 'downloads', NAME), archive.subarray(0, 100));
    await provisionRelease(opts());
    expect(ranges).toEqual(['bytes=100-']);
  });

  it('says so when the release has no archive for the backend', async () => {
    await expect(provisionRelease({ ...opts(), backend: 'cuda' })).rejects.toThrow(
      'llama.cpp publishes no cuda build for this platform',
    );
  });
});
