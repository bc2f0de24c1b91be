import { type Catalog, type CatalogModel, normalizeModelName, poolingOf, reranks } from '../catalog/catalog.js';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { runnerArgs } from '../runner/args.js';
import { resolveBudget } from './budget.js';
import { estimateMemory } from './memory.js';
import type { SchedulableModel, SchedulerPolicy } from './types.js';

/** What a scheduled child is for: a model as it is, or embeddings from a generative model's GGUF. */
export type Purpose = 'serve' | 'embeddings';

const EMBEDDINGS = ' (embeddings)';
/** Embedding children of generative models need little context: inputs are cut to fit it. */
const EMBEDDINGS_CONTEXT = 2048;

/** The name a model's embedding child is scheduled (and listed in /api/ps) under. */
export const embeddingsChild = (name: string): string => `${name}${EMBEDDINGS}`;

/** The catalogue model a scheduled child serves: its own name, or the model its embedding child embeds for. */
export const servedModel = (name: string): string =>
  name.endsWith(EMBEDDINGS) ? name.slice(0, -EMBEDDINGS.length) : name;

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
  private readonly cache = {
    serve: new WeakMap<CatalogModel, Memo>(),
    embeddings: new WeakMap<CatalogModel, Memo>(),
  };

  constructor(private readonly sources: PlanSources) {}

  /**
   * Bound, so it can be handed out as a function. For embeddings, a model that does not embed by
   * itself gets a child of its own: the same GGUF started with --embeddings and a small context.
   */
  readonly schedulable = (m: CatalogModel, purpose: Purpose = 'serve'): SchedulableModel => {
    const own = purpose === 'serve' || m.embedding || reranks(m);
    const cache = this.cache[own ? 'serve' : 'embeddings'];
    const config = this.sources.config();
    const binary = this.sources.binary();
    const adjust = this.sources.adjust ?? ((p: SchedulableModel) => p);
    const hit = cache.get(m);
    if (hit && hit.config === config && hit.binary === binary) return adjust(hit.plan);
    const plan = planModel(own ? m : embeddingModel(m, config), config, binary, this.sources.gpuLayers());
    cache.set(m, { config, binary, plan });
    return adjust(plan);
  };

  readonly resolve = (name: string): SchedulableModel | undefined => {
    const served = servedModel(name);
    const m = this.sources.catalog.resolve(served);
    return m ? this.schedulable(m, served === name ? 'serve' : 'embeddings') : undefined;
  };

  pinned(): SchedulableModel[] {
    return this.sources.catalog
      .list()
      .filter((m) => m.pinned)
      .map((m) => this.schedulable(m));
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
  const pooling = poolingOf(m.gguf);
  const launch = {
    name: m.name,
    path: m.path,
    args: m.args,
    embedding: m.embedding,
    rerank: reranks(m),
    pooling: pooling === 'cls' || pooling === 'last' ? pooling : undefined,
    contextLength: m.gguf.contextLength,
    mmproj: m.mmproj,
    rpc: m.rpc,
  };
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

interface Memo {
  config: Config;
  binary: string;
  plan: SchedulableModel;
}

/** A generative model as its embedding child: embeddings on, no projector, at most a small context. */
function embeddingModel(m: CatalogModel, config: Config): CatalogModel {
  const trained = m.gguf.contextLength ?? EMBEDDINGS_CONTEXT;
  const configured = m.ctxSize ?? config.defaults.ctx_size;
  const ctxSize = Math.min(configured || trained, trained, EMBEDDINGS_CONTEXT);
  return { ...m, name: embeddingsChild(m.name), embedding: true, ctxSize, mmproj: undefined, pinned: false };
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
