import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cachedBinaryPath, findLlamaServer, llamaServerVersion } from '../../src/provision/llama-binary.js';

let dir: string;
let fake: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'corral-provision-'));
  fake = join(dir, 'bin', 'llama-server');
  await mkdir(join(dir, 'bin'));
  await writeFile(fake, '#!/bin/sh\necho "version: 9.9.9 (fake)" >&2\n');
  await chmod(fake, 0o755);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('finding llama-server', () => {
  const empty = { PATH: '/nonexistent', XDG_CACHE_HOME: '/nonexistent-cache', HOME: '/nonexistent-home' };

  it('prefers the configured binary, then CORRAL_LLAMA_SERVER, then PATH, then the cache', async () => {
    const real = inject('fixtures').llamaServer;
    expect((await findLlamaServer({ configured: fake, env: { ...empty, CORRAL_LLAMA_SERVER: real } }))?.source).toBe(
      'config',
    );
    expect(
      await findLlamaServer({ env: { ...empty, CORRAL_LLAMA_SERVER: fake, PATH: join(dir, 'bin') } }),
    ).toMatchObject({ source: 'env', path: fake });
    expect(await findLlamaServer({ env: { ...empty, PATH: join(dir, 'bin') } })).toMatchObject({
      source: 'path',
      path: fake,
    });
    expect(await findLlamaServer({ env: empty })).toBeUndefined();
  });

  it('finds a cached build keyed by llama.cpp version under XDG_CACHE_HOME', async () => {
    const env = { ...empty, XDG_CACHE_HOME: join(dir, 'cache') };
    const target = cachedBinaryPath(env);
    expect(target).toContain(join('corral', 'llama.cpp'));
    await mkdir(join(target, '..'), { recursive: true });
    await writeFile(target, '#!/bin/sh\n');
    await chmod(target, 0o755);
    expect(await findLlamaServer({ env })).toMatchObject({ source: 'cache', path: target });
  });

  it('a named binary that does not exist is an error, not a silent fallback', async () => {
    await expect(findLlamaServer({ configured: join(dir, 'missing'), env: empty })).rejects.toThrow(
      /not an executable/,
    );
    await expect(findLlamaServer({ env: { ...empty, CORRAL_LLAMA_SERVER: join(dir, 'missing') } })).rejects.toThrow(
      /CORRAL_LLAMA_SERVER/,
    );
  });

  it('reads the version of the real binary', async () => {
    expect(await llamaServerVersion(inject('fixtures').llamaServer)).toMatch(/\d+\.\d+\.\d+/);
    expect(await llamaServerVersion(fake)).toBe('9.9.9 (fake)');
  });
});

describe('corral doctor', () => {
  it('prints the binary and why, the models found, and config errors', async () => {
    const work = join(dir, 'doctor');
    await mkdir(join(work, 'config'), { recursive: true });
    await mkdir(join(work, 'data', 'models'), { recursive: true });
    const { writeTinyModel } = await import('../fixtures/gguf-writer.js');
    await writeTinyModel(join(work, 'data', 'models', 'Doctor-Test.gguf'));
    const cli = join(process.cwd(), 'dist', 'src', 'cli.js');
    const env = { ...process.env, CORRAL_LLAMA_SERVER: inject('fixtures').llamaServer };
    const ok = await execa('node', [cli, 'doctor'], { cwd: work, env, reject: false });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain('CORRAL_LLAMA_SERVER');
    expect(ok.stdout).toMatch(/version:\s+\S+/);
    expect(ok.stdout).toContain('doctor-test:latest');
    await writeFile(join(work, 'config', 'corral.yaml'), 'server:\n  port: "many"\n');
    const bad = await execa('node', [cli, 'doctor'], { cwd: work, env, reject: false });
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/corral\.yaml:2: server\.port/);
  });
});
