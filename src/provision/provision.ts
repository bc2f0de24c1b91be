import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFromSource, buildOnLibs } from './build.js';
import {
  backendDir,
  installDir,
  LLAMA_SOURCE_PACKAGE,
  LLAMA_SOURCE_TAG,
  LLAMA_TOOLS,
  type Manifest,
  stagingDir,
} from './cache.js';
import { type Backend, detectMachine, FIXES, type GpuBackend, gpuBackends, type Machine } from './detect.js';
import { type NpmLibsChoice, type NpmLibsPlan, npmLibsFor, stageLibs } from './npm-libs.js';
import { backendBuild, BASE_CMAKE_FLAGS, chooseBackend } from './plan.js';
import type { Progress } from './progress.js';
import { ProvisionError, runTool } from './run-tool.js';
import { checkoutSource, fetchSource } from './source.js';

/** How the programs are made: against node-llama-cpp's prebuilt libraries when they fit, else all from source. */
export type BuildRoute = 'auto' | 'npm-libs' | 'source';

export interface ProvisionOptions {
  env?: NodeJS.ProcessEnv;
  backend?: Backend | 'auto';
  route?: BuildRoute;
  progress?: Progress;
  /** The machine as detected; tests pass one made from stand-in tools. */
  machine?: Machine;
}

export interface Provisioned {
  dir: string;
  manifest: Manifest;
  /** What was decided and why (GPU found, toolkit missing, fell back …). */
  notes: string[];
}

export interface ProvisionPlan {
  backend: Backend;
  /** The cache directory it goes to. */
  dir: string;
  route: 'npm-libs' | 'source';
  npm?: NpmLibsPlan | undefined;
  /** For a build from source (and the fallback when the prebuilt route fails). */
  cmakeFlags: string[];
  buildEnv: Record<string, string>;
  /** What was decided and why (GPU found, toolkit missing …). */
  notes: string[];
}

/** What `provision` will do on this machine: which backend, from where, with which cmake options. */
export async function planProvision(opts: ProvisionOptions = {}): Promise<ProvisionPlan> {
  const env = opts.env ?? process.env;
  const machine = opts.machine ?? (await detectMachine({ env }));
  const npm = new Map<GpuBackend, NpmLibsChoice>();
  for (const b of gpuBackends(machine)) npm.set(b, await npmLibsFor(b, machine.platform, machine.arch, env));
  const choice = chooseBackend(machine, opts.backend ?? 'auto', (b) => npm.get(b)?.plan !== undefined);
  const backend = choice.backend;
  const route = opts.route ?? 'auto';
  const libs = route === 'source' ? undefined : await npmLibsFor(backend, machine.platform, machine.arch, env);
  if (route === 'npm-libs' && !libs?.plan) throw new ProvisionError(libs?.problem ?? 'no prebuilt libraries');
  if (backend !== 'cpu' && !libs?.plan && !machine.toolkits[backend].ready && route !== 'source') {
    throw new ProvisionError(
      `cannot provision ${backend}: ${libs?.problem ?? 'no prebuilt libraries'}, ` +
        `and ${machine.toolkits[backend].detail} (${FIXES[backend]})`,
    );
  }
  const { flags, env: buildEnv } = backendBuild(backend, machine);
  return {
    backend,
    dir: backendDir(backend, env),
    route: libs?.plan ? 'npm-libs' : 'source',
    npm: libs?.plan,
    cmakeFlags: [...BASE_CMAKE_FLAGS, ...flags],
    buildEnv,
    notes: choice.notes,
  };
}

/** Builds (or assembles) the programs for one backend into `<cache>/<version>-<backend>/`. */
export async function provision(opts: ProvisionOptions = {}): Promise<Provisioned> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => {});
  const plan = await planProvision(opts);
  const notes = [...plan.notes];
  if ((opts.backend ?? 'auto') === 'auto') for (const n of notes) progress(n);
  const started = Date.now();
  const staging = await stagingDir(plan.dir);
  const work = await mkdtemp(join(tmpdir(), 'corral-llama-build-'));
  try {
    const src = await checkoutSource(await fetchSource(env, progress), work, progress);
    const req = { src, staging, backend: plan.backend, tools: LLAMA_TOOLS, env, progress };
    let made: Pick<Manifest, 'route' | 'origin' | 'cmakeFlags'> | undefined;
    if (plan.npm) {
      try {
        const staged = await stageLibs(plan.npm, staging, env, progress);
        await buildOnLibs(req, staged.suffix);
        made = { route: 'npm-libs', origin: staged.origin, cmakeFlags: [] };
      } catch (err) {
        if (opts.route === 'npm-libs') throw err;
        const why = (err as Error).message.split('\n')[0];
        const note = `building against the prebuilt libraries failed (${why}); building all from source`;
        notes.push(note);
        progress(note);
        await rm(staging, { recursive: true, force: true });
        await stagingDir(plan.dir);
        await rm(join(src, 'build'), { recursive: true, force: true });
        await restoreSource(src);
      }
    }
    if (!made) {
      await buildFromSource(req, plan.cmakeFlags.slice(BASE_CMAKE_FLAGS.length), plan.buildEnv);
      made = { route: 'source', origin: [LLAMA_SOURCE_PACKAGE], cmakeFlags: plan.cmakeFlags };
    }
    const manifest: Manifest = {
      version: LLAMA_SOURCE_TAG,
      backend: plan.backend,
      ...made,
      tools: [...LLAMA_TOOLS],
      builtAt: new Date().toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
    };
    await installDir(staging, plan.dir, manifest);
    progress(`llama.cpp ${LLAMA_SOURCE_TAG} (${plan.backend}) ready in ${plan.dir} after ${manifest.seconds} s`);
    return { dir: plan.dir, manifest, notes };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Puts llama.cpp's own top-level CMakeLists.txt back after the programs-only one replaced it. */
async function restoreSource(src: string): Promise<void> {
  await runTool('git', ['checkout', '--', 'CMakeLists.txt'], { cwd: src });
}
