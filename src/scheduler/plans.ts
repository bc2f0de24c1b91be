import { type Catalog, type CatalogModel, normalizeModelName } from '../catalog/catalog.js';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { runnerArgs } from '../runner/args.js';
import { resolveBudget } from './budget.js';
import { estimateMemory } from './memory.js';
import type { SchedulableModel, SchedulerPolicy } from './types.js';

export interface PlanSources {
  catalog: Catalog;
  /** Read on every call: a reload replaces the config (and maybe the binary) rather than mutating it. */
  config(): Config;
  binary(): string;
  /** The -ngl models get when they set none (undefined: a CPU build); follows the binary. */
  gpuLayers(): string | undefined;
  /** A last say on each plan, read on every call (a model on RPC workers: the share its node holds). */
  adjust?(plan: SchedulableModel): SchedulableModel;
}

/**
 * How catalogue entries become what the scheduler runs under the current config: launch spec, limits,
 * keep_alive, memory estimate and the fingerprint that tells a reload whether a child must restart.
 */
export class ModelPlans {
  // An entry's plan depends only on it, the config and the binary, all replaced (not mutated) on reload;
  // memoised so requests and scrapes do not rebuild argv and fingerprint.
  private readonly cache = new WeakMap<CatalogModel, { config: Config; binary: string; plan: SchedulableModel }>();

  constructor(private readonly sources: PlanSources) {}

  /** Bound, so it can be handed out as a function. */
  readonly schedulable = (m: CatalogModel): SchedulableModel => {
    const config = this.sources.config();
    const binary = this.sources.binary();
    const hit = this.cache.get(m);
    const adjust = this.sources.adjust ?? ((p: SchedulableModel) => p);
    if (hit && hit.config === config && hit.binary === binary) return adjust(hit.plan);
    const plan = planModel(m, config, binary, this.sources.gpuLayers());
    this.cache.set(m, { config, binary, plan });
    return adjust(plan);
  };

  readonly resolve = (name: string): SchedulableModel | undefined => {
    const m = this.sources.catalog.resolve(name);
    return m ? this.schedulable(m) : undefined;
  };

  pinned(): SchedulableModel[] {
    return this.sources.catalog
      .list()
      .filter((m) => m.pinned)
      .map(this.schedulable);
  }
}

export function planModel(
  m: CatalogModel,
  config: Config,
  binary: string,
  gpuLayers?: string | undefined,
): SchedulableModel {
  const parallel = m.parallel ?? config.defaults.parallel;
  const ctxSize = m.ctxSize ?? config.defaults.ctx_size;
  const shape = {
    fileBytes: m.size,
    blockCount: m.gguf.blockCount,
    embeddingLength: m.gguf.embeddingLength,
    headCount: m.gguf.headCount,
    headCountKv: m.gguf.headCountKv,
  };
  const memoryAt = (ctx: number): number => estimateMemory(shape, (ctx || m.gguf.contextLength || 4096) * parallel);
  const launch = { name: m.name, path: m.path, args: m.args, embedding: m.embedding, mmproj: m.mmproj, rpc: m.rpc };
  return {
    name: m.name,
    path: m.path,
    parallel,
    queueSize: m.queueSize ?? config.defaults.queue_size,
    ctxSize,
    keepAliveMs: parseDuration(m.keepAlive ?? config.defaults.keep_alive),
    memoryBytes: memoryAt(ctxSize),
    memoryAt,
    pinned: m.pinned,
    // Anything that changes how the process starts: binary, argv (model args, global args, ctx, parallel), the file itself.
    fingerprint: JSON.stringify([
      binary,
      runnerArgs(launch, { globalArgs: config.llama_server.args, ctxSize, parallel, gpuLayers }),
      m.size,
      m.modifiedAt.getTime(),
      m.rpc ?? null,
    ]),
    launch,
  };
}

/** What the machine adds to the config's policy: GPU memory, and whether llama-server keeps all in RAM. */
export interface Machine {
  vramBytes: number;
  cpuOnly: boolean;
}

/** The scheduler's policy under a config; swap-group members are named as the catalogue resolves them. */
export function schedulerPolicy(c: Config, catalog: Catalog, machine: Machine): SchedulerPolicy {
  const s = c.scheduler;
  return {
    maxLoadedModels: s.max_loaded_models,
    memoryBudget: resolveBudget(s, { vramBytes: machine.vramBytes }),
    groups: Object.fromEntries(
      Object.entries(s.groups).map(([g, members]) => [
        g,
        members.map((m) => catalog.resolve(m)?.name ?? normalizeModelName(m)),
      ]),
    ),
    evictionWaitMs: parseDuration(s.eviction_wait),
    overlapEviction: s.overlap_eviction === 'auto' ? machine.cpuOnly : s.overlap_eviction,
    backoff: {
      initialMs: parseDuration(s.restart_backoff.initial),
      maxMs: parseDuration(s.restart_backoff.max),
      maxRestarts: s.restart_backoff.max_restarts,
      resetAfterMs: parseDuration(s.restart_backoff.reset_after),
    },
  };
}
