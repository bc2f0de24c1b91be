import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Backend } from './detect.js';

/** The npm package whose tarball carries llama.cpp's source as a git bundle (see shared/spec/llama-server.md). */
export const LLAMA_SOURCE_PACKAGE = 'node-llama-cpp@3.22.1';
/** The llama.cpp tag inside that package; the cache is keyed by it so a version bump rebuilds. */
export const LLAMA_SOURCE_TAG = 'v0.5.0';

/** The programs a provisioned directory holds, by the name callers ask for. */
export type LlamaTool = 'llama-server' | 'llama-quantize' | 'rpc-server';
export const LLAMA_TOOLS: readonly LlamaTool[] = ['llama-server', 'llama-quantize', 'rpc-server'];

/** How a provisioned directory came to be. */
export type Route = 'source' | 'npm-libs' | 'release';

/** `build.json` in each provisioned directory: what `corral doctor` and the System page report. */
export interface Manifest {
  version: string;
  backend: Backend;
  route: Route;
  /** For npm-libs: the platform packages the libraries came from; for release: the archive URL. */
  origin: string[];
  cmakeFlags: string[];
  tools: LlamaTool[];
  builtAt: string;
  seconds: number;
}

/** `${XDG_CACHE_HOME:-~/.cache}/corral/llama.cpp`: shared by every checkout of Corral for this user. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'corral', 'llama.cpp');
}

/** One directory per llama.cpp version and backend: `<root>/v0.5.0-cuda/`. */
export function backendDir(backend: Backend, env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), `${LLAMA_SOURCE_TAG}-${backend}`);
}

/** Where builds before per-backend directories put a CPU llama-server; still read, never written. */
export function legacyDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), LLAMA_SOURCE_TAG);
}

/** The downloaded source tarball, kept so a second backend or a rebuild does not fetch it again. */
export function sourceTarball(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'sources', `${LLAMA_SOURCE_PACKAGE.replace('@', '-')}.tgz`);
}

export async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/**
 * Moves a finished staging directory to `dir` in one rename, so no reader ever sees a half-filled
 * directory. A previous directory is renamed away first: running llama-servers keep their mapped files.
 */
export async function installDir(staging: string, dir: string, manifest: Manifest): Promise<void> {
  await writeFile(join(staging, 'build.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await mkdir(dirname(dir), { recursive: true });
  const old = `${dir}.old-${process.pid}`;
  const hadOld = await rename(dir, old).then(
    () => true,
    () => false,
  );
  await rename(staging, dir);
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/** A scratch directory on the cache's file system, so the final rename never crosses devices. */
export async function stagingDir(dir: string): Promise<string> {
  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  return staging;
}
