import { join } from 'node:path';
import { inspectBackend } from '../provision/backend-status.js';
import { backendDir, legacyDir, LLAMA_TOOLS } from '../provision/cache.js';
import { type Backend, isBackend } from '../provision/detect.js';
import {
  findLlamaServer,
  findLlamaTool,
  isExecutable,
  llamaServerVersion,
  requestedBackend,
} from '../provision/llama-binary.js';
import { planProvision, provision } from '../provision/provision.js';
import { provisionRelease } from '../provision/release.js';

export interface ProvisionFlags {
  backend?: string | undefined;
  fromSource?: boolean;
  prebuilt?: boolean;
  releaseUrl?: string | undefined;
  force?: boolean;
}

const say = (line: string): void => void process.stderr.write(`[provision] ${line}\n`);

/** The backend to provision: the flag, CORRAL_BACKEND, else the best this machine can use. */
async function pickBackend(flag: string | undefined, env: NodeJS.ProcessEnv, prebuilt: boolean): Promise<Backend> {
  if (flag !== undefined && flag !== 'auto' && !isBackend(flag)) {
    throw new Error(`--backend ${flag}: use auto, cpu, cuda, rocm, vulkan or metal`);
  }
  const asked = requestedBackend({ backend: flag as Backend | 'auto' | undefined, env });
  if (asked !== 'auto') return asked;
  // llama.cpp's own archives: the CPU build on Linux, the Metal one on macOS.
  if (prebuilt) return process.platform === 'darwin' ? 'metal' : 'cpu';
  const plan = await planProvision({ env, backend: asked });
  for (const n of plan.notes) say(n);
  return plan.backend;
}

/**
 * `corral provision`: makes sure the programs for this machine's backend are in the cache. A binary named
 * by CORRAL_LLAMA_SERVER or found on PATH is used as it is, unless a backend or --force is given.
 */
export async function provisionCommand(flags: ProvisionFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const explicit = flags.backend !== undefined || flags.force || flags.fromSource || flags.prebuilt;
  const existing = await findLlamaServer({ env });
  if (existing && !explicit && existing.source !== 'cache') {
    say(`llama-server: ${existing.path} (${existing.reason}); nothing to provision`);
    return report(existing.path, env);
  }
  const backend = await pickBackend(flags.backend, env, flags.prebuilt === true);
  const target = join(backendDir(backend, env), 'llama-server');
  // A CPU build in the layout before per-backend directories counts as the CPU one.
  const old = join(legacyDir(env), 'llama-server');
  const legacy = backend === 'cpu' && existing?.path === old && !flags.force ? old : undefined;
  if (!flags.force && ((await isExecutable(target)) || legacy)) {
    say(`llama-server for ${backend} is already provisioned: ${legacy ?? target} (--force to do it again)`);
    return report(legacy ?? target, env);
  }
  if (flags.prebuilt) {
    await provisionRelease({ backend, env, progress: say, releaseUrl: flags.releaseUrl });
  } else {
    await provision({ env, backend, route: flags.fromSource ? 'source' : 'auto', progress: say });
  }
  return report(target, env);
}

async function report(path: string, env: NodeJS.ProcessEnv): Promise<number> {
  const bin = (await findLlamaServer({ env })) ?? { path, source: 'cache' as const, reason: 'provisioned' };
  const { status } = await inspectBackend({ ...bin, path }, env);
  say(`llama-server: ${path}, version ${await llamaServerVersion(path)}, runs on ${status.description}`);
  for (const tool of LLAMA_TOOLS.filter((t) => t !== 'llama-server')) {
    say(`${tool}: ${(await findLlamaTool(tool, { env })) ?? 'not provisioned (comes with the next provision)'}`);
  }
  for (const w of status.warnings) say(`warning: ${w}`);
  return 0;
}
