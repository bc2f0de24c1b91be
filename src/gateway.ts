import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { readFile } from 'node:fs/promises';
import type { ReloadResult } from './admin/deps.js';
import { createPasswords } from './auth/passwords.js';
import { buildApp } from './app.js';
import { Catalog, normalizeModelName, type CatalogModel } from './catalog/catalog.js';
import { catalogRoots, watchCatalog } from './catalog/watch.js';
import { diffConfig } from './config/diff.js';
import { watchFile } from './config/watch.js';
import { binaryCheck, configCheck, storeCheck, writableDirCheck } from './health/checks.js';
import { parseDuration, parseSize } from './config/duration.js';
import { loadConfig, type LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { type BackendStatus, inspectBackend } from './provision/backend-status.js';
import { ensureLlamaServer, type ResolvedBinary } from './provision/llama-binary.js';
import { runnerArgs } from './runner/args.js';
import { PidRegistry, type ReapResult } from './runner/pid-registry.js';
import { deathSignalLauncher } from './runner/death-signal.js';
import { modelLogFile } from './runner/log-file.js';
import { Runner } from './runner/runner.js';
import { resolveBudget } from './scheduler/budget.js';
import { estimateMemory } from './scheduler/memory.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { SchedulableModel, SchedulerPolicy } from './scheduler/types.js';
import { openDatabase, type Store } from './store/database.js';
import { pruneLogs } from './store/retention.js';
import { requestLogEntry } from './metrics/request-log-entry.js';

export interface GatewayOptions {
  configFile: string;
  /** Working directory for relative data/logs/models paths. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logger?: FastifyServerOptions['logger'];
  /** Missing config file → embedded defaults (the quick start); tests pass false. */
  optionalConfig?: boolean;
  /** Reload the config file when it changes (default true when there is a file). */
  watchConfig?: boolean;
}

/** The outcome of the last config reload, for logs and the admin UI. */
export interface ReloadState {
  at: Date;
  ok: boolean;
  /** file:line problems when the new config was rejected (the last good one keeps serving). */
  problems: string[];
  changes: string[];
}

export interface GatewayEvents {
  reload: [state: ReloadState];
}

export interface Gateway {
  app: FastifyInstance;
  scheduler: Scheduler;
  catalog: Catalog;
  /** What the scheduler is given for a catalogue entry (its launch spec and policy under the current config). */
  schedulable(model: CatalogModel): SchedulableModel;
  binary: ResolvedBinary;
  /** Which backend that binary computes on (its --list-devices), and warnings about it. */
  backend: BackendStatus;
  config(): Config;
  loaded: LoadedConfig;
  store: Store;
  pids: PidRegistry;
  /** Children a previous gateway left behind, stopped before anything was spawned. */
  reaped: ReapResult[];
  /** Settles once the pinned models' first loads have finished (or failed). */
  pinned: Promise<void>;
  events: EventEmitter<GatewayEvents>;
  /** Re-reads the config file and applies the difference (what the file watcher calls). */
  reload(): Promise<ReloadState>;
  reloadState(): ReloadState | undefined;
  /** Stops accepting requests, waits up to `drainMs` for running ones, then stops every llama-server. */
  close(opts?: { drainMs?: number }): Promise<void>;
}

/** The composition root: config → catalogue → scheduler → app. Nothing here is global. */
export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const env = opts.env ?? process.env;
  const cwd = resolve(opts.cwd ?? process.cwd());
  let loaded = await loadConfig(resolve(cwd, opts.configFile), { optional: opts.optionalConfig ?? false, env });
  let config = loaded.config;
  const provision = (c: Config): Promise<ResolvedBinary> =>
    ensureLlamaServer({
      configured: c.llama_server.binary,
      backend: c.llama_server.backend,
      env,
      progress: (l) => process.stderr.write(`[llama-server build] ${l}\n`),
    });
  let binary = await provision(config);
  const catalog = new Catalog({ config, baseDir: loaded.baseDir, cwd, env });
  await catalog.refresh();

  // Before anything is spawned: children a gateway killed with -9 left behind still hold memory and ports.
  const pids = new PidRegistry(join(resolve(cwd, config.data_dir), 'pids'));
  const reaped = await pids.reapOrphans(parseDuration(config.llama_server.stop_timeout));

  const [inspected, launcher] = await Promise.all([inspectBackend(binary, env), deathSignalLauncher()]);
  const { machine } = inspected;
  let backend = inspected.status;
  const vramBytes = machine.gpus.reduce((sum, g) => sum + (g.vramBytes ?? 0), 0);
  // Whether llama-server keeps everything in RAM, which the kernel frees as an evicted child exits.
  let binaryCpuOnly = backend.devices?.length === 0;
  const makePolicy = (c: Config): SchedulerPolicy => ({
    maxLoadedModels: c.scheduler.max_loaded_models,
    memoryBudget: resolveBudget(c.scheduler, { vramBytes }),
    groups: Object.fromEntries(
      Object.entries(c.scheduler.groups).map(([g, members]) => [
        g,
        members.map((m) => catalog.resolve(m)?.name ?? normalizeModelName(m)),
      ]),
    ),
    evictionWaitMs: parseDuration(c.scheduler.eviction_wait),
    overlapEviction: c.scheduler.overlap_eviction === 'auto' ? binaryCpuOnly : c.scheduler.overlap_eviction,
    backoff: {
      initialMs: parseDuration(c.scheduler.restart_backoff.initial),
      maxMs: parseDuration(c.scheduler.restart_backoff.max),
      maxRestarts: c.scheduler.restart_backoff.max_restarts,
      resetAfterMs: parseDuration(c.scheduler.restart_backoff.reset_after),
    },
  });
  let policy = makePolicy(config);

  // A catalogue entry's schedulable form depends only on it, the config and the binary, all replaced
  // (not mutated) on reload; memoised so requests and scrapes do not rebuild argv and fingerprint.
  const schedulableCache = new WeakMap<CatalogModel, { config: Config; binary: string; value: SchedulableModel }>();
  const schedulable = (m: CatalogModel): SchedulableModel => {
    const hit = schedulableCache.get(m);
    if (hit && hit.config === config && hit.binary === binary.path) return hit.value;
    const value = computeSchedulable(m);
    schedulableCache.set(m, { config, binary: binary.path, value });
    return value;
  };
  const computeSchedulable = (m: CatalogModel): SchedulableModel => {
    const parallel = m.parallel ?? config.defaults.parallel;
    const ctxSize = m.ctxSize ?? config.defaults.ctx_size;
    const shape = {
      fileBytes: m.size,
      blockCount: m.gguf.blockCount,
      embeddingLength: m.gguf.embeddingLength,
      headCount: m.gguf.headCount,
      headCountKv: m.gguf.headCountKv,
    };
    const launch = { name: m.name, path: m.path, args: m.args, embedding: m.embedding, mmproj: m.mmproj };
    return {
      name: m.name,
      path: m.path,
      parallel,
      queueSize: m.queueSize ?? config.defaults.queue_size,
      ctxSize,
      keepAliveMs: parseDuration(m.keepAlive ?? config.defaults.keep_alive),
      memoryBytes: estimateMemory(shape, (ctxSize || m.gguf.contextLength || 4096) * parallel),
      memoryAt: (ctx) => estimateMemory(shape, (ctx || m.gguf.contextLength || 4096) * parallel),
      pinned: m.pinned,
      // Anything that changes how the process starts: binary, argv (model args, global args, ctx, parallel), the file itself.
      fingerprint: JSON.stringify([
        binary.path,
        runnerArgs(launch, { globalArgs: config.llama_server.args, ctxSize, parallel, gpuLayers: backend.gpuLayers }),
        m.size,
        m.modifiedAt.getTime(),
      ]),
      launch,
    };
  };
  const resolveModel = (name: string): SchedulableModel | undefined => {
    const m = catalog.resolve(name);
    return m ? schedulable(m) : undefined;
  };
  const pinnedModels = (): SchedulableModel[] =>
    catalog
      .list()
      .filter((m) => m.pinned)
      .map(schedulable);

  const scheduler = new Scheduler({
    makeRunner: (model, ctxSize, load) =>
      new Runner({
        model: model.name,
        binary: binary.path,
        args: runnerArgs(model.launch, {
          globalArgs: config.llama_server.args,
          ctxSize,
          parallel: model.parallel,
          gpuLayers: backend.gpuLayers,
          requestGpuLayers: load?.numGpu,
        }),
        logFile: modelLogFile(resolve(cwd, config.logs_dir), model.name),
        logMaxBytes: parseSize(config.llama_server.log_max_size),
        startupTimeoutMs: parseDuration(config.llama_server.startup_timeout),
        stopTimeoutMs: parseDuration(config.llama_server.stop_timeout),
        env,
        pids,
        launcher,
      }),
    policy: () => policy,
    resolve: resolveModel,
  });

  // Another Ollama pulling into the store it shares, or GGUFs copied into a models directory, show up
  // without a restart; a model whose file went or changed is unloaded or restarted once idle.
  const watchFiles = () => watchCatalog(catalog, () => void scheduler.reconcile());
  let storeWatch = await watchFiles();

  const store = openDatabase(resolve(cwd, config.store.path));
  // Retention: prune old request/audit rows now and hourly (reads the current config each time).
  const prune = (): void => void pruneLogs(store, config.store);
  prune();
  const pruneTimer = setInterval(prune, 3_600_000);
  pruneTimer.unref();
  const passwords = createPasswords();
  const app = await buildApp({
    api: { catalog, scheduler, config: () => config, schedulable },
    store,
    auth: config.auth,
    passwords,
    admin: {
      binary,
      backend: () => backend,
      configControl: {
        file: () => loaded.file,
        source: async () => (loaded.file ? readFile(loaded.file, 'utf8').catch(() => loaded.source) : loaded.source),
        lastReload: () => reloadResult(lastReload),
        reload: async () => reloadResult(await reload())!,
        nextReload: (timeoutMs) =>
          new Promise((done) => {
            const onReload = (state: ReloadState): void => {
              clearTimeout(timer);
              done(reloadResult(state));
            };
            const timer = setTimeout(() => {
              events.off('reload', onReload);
              done(undefined);
            }, timeoutMs);
            events.once('reload', onReload);
          }),
      },
      logsDir: () => resolve(cwd, config.logs_dir),
      dataDir: () => resolve(cwd, config.data_dir),
    },
    logger: opts.logger,
    bodyLimit: config.server.body_limit,
    readiness: [
      configCheck(() => config),
      writableDirCheck('data directory', () => resolve(cwd, config.data_dir)),
      // llama-server's output goes nowhere else: a model cannot start without its log file.
      writableDirCheck('logs directory', () => resolve(cwd, config.logs_dir)),
      storeCheck(store),
      binaryCheck(() => binary.path),
    ],
    onRequestFinished: (r) => {
      const entry = requestLogEntry(r);
      if (!entry) return;
      store.requestLog.write(entry);
      const principal = r.request.principal;
      const used = (r.promptTokens ?? 0) + (r.generatedTokens ?? 0);
      if (used > 0) app.corralAuth.recordTokenUsage(principal, used);
    },
  });

  // Startup warnings are logged by serve; these are the ones a later refresh (pull, delete, reload) finds.
  catalog.onWarning = (w) => app.log.warn(w);

  let draining = false;
  app.addHook('onRequest', async (_request, reply) => {
    if (!draining) return;
    reply.header('connection', 'close');
    return reply.code(503).send({ error: 'Corral is shutting down' });
  });

  const events = new EventEmitter<GatewayEvents>();
  let lastReload: ReloadState | undefined;
  const report = (state: ReloadState): ReloadState => {
    lastReload = state;
    if (state.ok) app.log.info({ changes: state.changes }, 'config reloaded');
    else app.log.error({ problems: state.problems }, 'config reload rejected; still serving the last good config');
    events.emit('reload', state);
    return state;
  };
  const reload = async (): Promise<ReloadState> => {
    if (!loaded.file) return report({ at: new Date(), ok: false, problems: ['no config file to reload'], changes: [] });
    try {
      const next = await loadConfig(loaded.file, { env });
      const changes = diffConfig(config, next.config);
      if (next.config.llama_server.binary !== config.llama_server.binary) {
        binary = await provision(next.config);
        backend = (await inspectBackend(binary, env, machine)).status;
        binaryCpuOnly = backend.devices?.length === 0;
      }
      loaded = next;
      config = next.config;
      catalog.reconfigure({ config, baseDir: next.baseDir, cwd, env });
      await catalog.refresh();
      if (storeWatch.roots.join('\0') !== catalogRoots(catalog).join('\0')) {
        await storeWatch.close();
        storeWatch = await watchFiles();
      }
      policy = makePolicy(config);
      changes.push(...scheduler.reconcile());
      void scheduler.loadPinned(pinnedModels());
      return report({ at: new Date(), ok: true, problems: [], changes });
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      return report({ at: new Date(), ok: false, problems, changes: [] });
    }
  };
  const watcher =
    loaded.file && (opts.watchConfig ?? true)
      ? watchFile(loaded.file, { onChange: async () => void (await reload()) })
      : undefined;

  const pinned = scheduler.loadPinned(pinnedModels());

  return {
    app,
    scheduler,
    catalog,
    schedulable,
    get binary() {
      return binary;
    },
    get backend() {
      return backend;
    },
    config: () => config,
    get loaded() {
      return loaded;
    },
    store,
    pids,
    reaped,
    pinned,
    events,
    reload,
    reloadState: () => lastReload,
    async close(closeOpts = {}) {
      draining = true;
      await watcher?.close();
      await storeWatch.close();
      if (closeOpts.drainMs) await scheduler.drain(closeOpts.drainMs);
      await app.close();
      await scheduler.shutdown();
      clearInterval(pruneTimer);
      store.close();
    },
  };
}

/** The reload outcome in the admin UI's words. */
function reloadResult(state: ReloadState | undefined): ReloadResult | undefined {
  if (!state) return undefined;
  const summary = state.ok
    ? state.changes.length
      ? `applied: ${state.changes.join('; ')}`
      : 'applied: nothing changed'
    : 'rejected; the previous config stays in effect';
  return { at: state.at, ok: state.ok, summary, problems: state.problems };
}
