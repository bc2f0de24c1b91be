import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Catalog, type CatalogModel } from './catalog/catalog.js';
import { type CatalogWatcher, catalogRoots, watchCatalog } from './catalog/watch.js';
import { parseDuration } from './config/duration.js';
import { loadConfig, type LoadedConfig } from './config/load.js';
import { ConfigReloader, type ReloadState, type ReloaderEvents } from './config/reloader.js';
import type { Config } from './config/schema.js';
import { HttpLlamaClient } from './llama/http-client.js';
import { composeApp, logReload } from './compose-app.js';
import { inspectMachine, type MachineFacts, reprovision } from './machine-facts.js';
import type { BackendStatus } from './provision/backend-status.js';
import type { ResolvedBinary } from './provision/llama-binary.js';
import { Quantizer } from './quantize/quantizer.js';
import { childEnvironment } from './runner/child-env.js';
import { PidRegistry, type ReapResult } from './runner/pid-registry.js';
import { createSocketDir, type SocketDir } from './runner/socket-dir.js';
import { runnerSpec, type RunnerSettings } from './runner/spec.js';
import { ModelPlans, schedulerPolicy } from './scheduler/plans.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { SchedulableModel } from './scheduler/types.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { pruneLogs } from './store/retention.js';
import { createFleet, type Fleet } from './fleet/fleet.js';
import { packageVersion } from './fleet/version.js';
import { liveWorkers, rpcPlan, runnerFor, withRpcGroups, workerLease } from './fleet/rpc.js';

export type { ReloadState } from './config/reloader.js';

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

export type GatewayEvents = ReloaderEvents;

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
  /** Emits `reload` with each reload's outcome. */
  events: ConfigReloader;
  /** Re-reads the config file and applies the difference (what the file watcher calls). */
  reload(): Promise<ReloadState>;
  reloadState(): ReloadState | undefined;
  /** This node's part in a fleet, when `fleet.enabled` is set. */
  fleet: Fleet | undefined;
  /** Stops accepting requests, waits up to `drainMs` for running ones, then stops every llama-server. */
  close(opts?: { drainMs?: number }): Promise<void>;
}

/** The composition root: config → catalogue → scheduler → app. Nothing here is global. */
export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const base = await prepare(opts);
  const fleetRef: { current?: Fleet | undefined } = {};
  const core = await schedule(base, opts, () => fleetRef.current);
  const { catalog, scheduler, plans, reloader, config } = core;
  const quantizer = newQuantizer(base, config);
  const leftovers = await quantizer.sweep(catalog.stores.target);
  const storeEvents = storeReporter();
  const store = await openStore(base.first.store, base.cwd, storeEvents);
  const fleetLog = deferredLog();
  const fleet = base.first.fleet.enabled
    ? createFleet({
        config: base.first,
        env: base.env,
        catalog,
        scheduler,
        store,
        schedulable: plans.schedulable,
        version: packageVersion(),
        log: fleetLog,
      })
    : undefined;
  fleetRef.current = fleet;
  const { cwd, machine } = base;
  const parts = { catalog, scheduler, plans, quantizer, store, reloader, cwd, machine, fleet };
  const app = await composeApp({ ...parts, logger: opts.logger });
  storeEvents.attach(app.log.child({ module: 'store' }));
  fleetLog.attach(app.log.child({ module: 'fleet' }));
  fleet?.joinOnListen(app);
  for (const file of leftovers) app.log.warn({ file }, 'removed what an interrupted quantize left in the blobs');
  // Startup warnings are logged by serve; these are the ones a later refresh (pull, delete, reload) finds.
  catalog.onWarning = (w) => app.log.warn(w);
  if (!base.socketDir) app.log.warn('llama-server children listen on loopback TCP, each with its own API key');
  reloader.on('reload', (state) => logReload(app, state));
  const draining = refuseWhileDraining(app);
  const pruner = startPruning(store, config, app.log);
  const pinned = scheduler.loadPinned(plans.pinned());

  const close = closer({ ...parts, app, files: () => core.files, draining, pruner, socketDir: base.socketDir });
  return {
    app,
    scheduler,
    catalog,
    schedulable: plans.schedulable,
    get binary() {
      return machine.binary;
    },
    get backend() {
      return machine.backend;
    },
    config,
    get loaded() {
      return reloader.current();
    },
    store,
    fleet,
    pids: base.pids,
    reaped: base.reaped,
    pinned,
    events: reloader,
    reload: () => reloader.reload(),
    reloadState: () => reloader.state(),
    close,
  };
}

/** Stops accepting requests, waits up to `drainMs` for running ones, then stops every llama-server. */
function closer(p: {
  app: FastifyInstance;
  draining: { start(): void };
  quantizer: Quantizer;
  reloader: ConfigReloader;
  files: () => CatalogWatcher;
  fleet: Fleet | undefined;
  scheduler: Scheduler;
  socketDir: SocketDir | undefined;
  pruner: NodeJS.Timeout;
  store: Store;
}) {
  return async (opts: { drainMs?: number } = {}): Promise<void> => {
    p.draining.start();
    // Quantizing can take many minutes: cancelled now rather than after the drain.
    await p.quantizer.close();
    await p.reloader.close();
    await p.files().close();
    // Leaving first: the others stop forwarding here while the last requests drain.
    await p.fleet?.leave();
    if (opts.drainMs) await p.scheduler.drain(opts.drainMs);
    await p.app.close();
    await p.scheduler.shutdown();
    p.socketDir?.remove();
    clearInterval(p.pruner);
    await p.store.close();
  };
}

/** What is known before anything runs: the config, the machine, the catalogue, and the children's places. */
async function prepare(opts: GatewayOptions) {
  const env = opts.env ?? process.env;
  const cwd = resolve(opts.cwd ?? process.cwd());
  const loaded = await loadConfig(resolve(cwd, opts.configFile), { optional: opts.optionalConfig ?? false, env });
  const first = loaded.config;
  const machine = await inspectMachine(first, env);
  const catalog = new Catalog({ config: first, baseDir: loaded.baseDir, cwd, env });
  await catalog.refresh();
  // Before anything is spawned: children a gateway killed with -9 left behind still hold memory and sockets.
  const pids = new PidRegistry(join(resolve(cwd, first.data_dir), 'pids'));
  const reaped = await pids.reapOrphans(parseDuration(first.llama_server.stop_timeout));
  const socketDir = privateSocketDir(first, env);
  return { env, cwd, loaded, first, machine, catalog, pids, reaped, socketDir };
}

type Prepared = Awaited<ReturnType<typeof prepare>>;

/**
 * The config reloader, the plans and the scheduler, which refer to each other: a reload re-plans and
 * reconciles, a plan reads the current config, and (in a fleet) a model on RPC workers is planned and
 * started with the workers the fleet knows of.
 */
async function schedule(base: Prepared, opts: GatewayOptions, fleet: () => Fleet | undefined) {
  const { env, cwd, machine, catalog } = base;
  let policy = withRpcGroups(schedulerPolicy(base.first, catalog, machine), catalog.list());
  // A CPU-only llama-server offloads every layer to its rpc workers; a GPU keeps a share of them.
  const deviceBytes = (): number => (machine.cpuOnly ? 0 : machine.vramBytes);
  const core = {
    files: undefined as unknown as CatalogWatcher,
    reloader: new ConfigReloader(base.loaded, {
      env,
      watch: opts.watchConfig,
      apply: async (next, previous) => {
        await reprovision(machine, previous.config, next.config, env);
        catalog.reconfigure({ config: next.config, baseDir: next.baseDir, cwd, env });
        await catalog.refresh();
        core.files = await rewatch(core.files, catalog, scheduler);
        policy = withRpcGroups(schedulerPolicy(next.config, catalog, machine), catalog.list());
        const changes = scheduler.reconcile();
        void scheduler.loadPinned(plans.pinned());
        return changes;
      },
    }),
  };
  const config = (): Config => core.reloader.current().config;
  const plans = new ModelPlans({
    catalog,
    config,
    binary: () => machine.binary.path,
    gpuLayers: () => machine.backend.gpuLayers,
    adjust: (plan) => rpcPlan(plan, liveWorkers(fleet()?.membership), deviceBytes()),
  });
  const runners = { cwd, env, pids: base.pids, machine, socketDir: base.socketDir };
  const scheduler: Scheduler = new Scheduler({
    makeRunner: (m, ctxSize, load) =>
      runnerFor(
        m,
        (launch) => runnerSpec(launch, ctxSize, m.parallel, config(), settings(runners), load),
        (parts) => workerLease({ ...parts, localBytes: deviceBytes(), fleet: fleetHolds(fleet()) }),
      ),
    policy: () => policy,
    resolve: plans.resolve,
  });
  // Another Ollama pulling into the store it shares, or GGUFs copied into a models directory, show up
  // without a restart; a model whose file went or changed is unloaded or restarted once idle.
  core.files = await watchCatalog(catalog, () => void scheduler.reconcile());
  return {
    ...core,
    get files() {
      return core.files;
    },
    catalog,
    config,
    plans,
    scheduler,
  };
}

/** What a model on RPC workers needs of the fleet to hold them while it runs. */
function fleetHolds(fleet: Fleet | undefined) {
  return fleet && { membership: fleet.membership, registry: fleet.registry, expiryMs: fleet.expiryMs };
}

function newQuantizer(base: Prepared, config: () => Config): Quantizer {
  return new Quantizer({
    binary: () => base.machine.binary.path,
    backend: () => config().llama_server.backend,
    launcher: () => base.machine.launcher,
    env: base.env,
    childEnv: () => childEnvironment(base.env, config().llama_server.pass_env),
    pids: base.pids,
  });
}

/** A log for parts made before the app (whose logger it becomes once attached); silent until then. */
function deferredLog() {
  let log: Pick<FastifyInstance['log'], 'info' | 'warn'> | undefined;
  return {
    attach: (l: Pick<FastifyInstance['log'], 'info' | 'warn'>) => void (log = l),
    info: (obj: object, msg: string) => log?.info(obj, msg),
    warn: (obj: object, msg: string) => log?.warn(obj, msg),
  };
}

/**
 * Where the store reports deferred-write failures and losing or regaining PostgreSQL: the app's log
 * once it exists; before, while a start waits for the server, standard error says why it waits.
 */
function storeReporter() {
  let log: FastifyInstance['log'] | undefined;
  return {
    attach: (l: FastifyInstance['log']) => void (log = l),
    onWriteError: (err: unknown) => log?.error({ err }, 'deferred store write failed'),
    onAvailability(up: boolean, reason?: string) {
      if (log && up) log.info('store reachable again');
      else if (log) log.error({ reason }, 'store unreachable');
      else if (!up) process.stderr.write(`store unreachable at start (${reason}); trying again for up to 30 s\n`);
    },
  };
}

/** The catalogue's watcher again when a reload moved the directories it watches. */
async function rewatch(files: CatalogWatcher, catalog: Catalog, scheduler: Scheduler): Promise<CatalogWatcher> {
  if (files.roots.join('\0') === catalogRoots(catalog).join('\0')) return files;
  await files.close();
  return watchCatalog(catalog, () => void scheduler.reconcile());
}

/** What every runner shares: the binary and launcher as currently known, the socket directory, the client. */
function settings(r: {
  cwd: string;
  env: NodeJS.ProcessEnv;
  pids: PidRegistry;
  machine: MachineFacts;
  socketDir: SocketDir | undefined;
}): RunnerSettings {
  return {
    binary: r.machine.binary.path,
    cwd: r.cwd,
    env: r.env,
    pids: r.pids,
    launcher: r.machine.launcher,
    gpuLayers: r.machine.backend.gpuLayers,
    socketDir: r.socketDir,
    connect: (endpoint) => new HttpLlamaClient(endpoint),
  };
}

/** The children's private socket directory, or undefined for loopback TCP with keys (see the transport key). */
function privateSocketDir(config: Config, env: NodeJS.ProcessEnv): SocketDir | undefined {
  const transport = config.llama_server.transport;
  if (transport === 'tcp') return undefined;
  const dir = createSocketDir(env);
  if (!dir && transport === 'unix')
    throw new Error('llama_server.transport is "unix" but no private socket directory could be created');
  return dir;
}

/** Once started, new requests are refused with 503 while running ones finish. */
function refuseWhileDraining(app: FastifyInstance): { start(): void } {
  let draining = false;
  app.addHook('onRequest', async (_request, reply) => {
    if (!draining) return;
    reply.header('connection', 'close');
    return reply.code(503).send({ error: 'Corral is shutting down' });
  });
  return { start: () => void (draining = true) };
}

/** Retention: prunes old request/audit rows now and hourly (reading the current config each time). */
function startPruning(store: Store, config: () => Config, log: FastifyInstance['log']): NodeJS.Timeout {
  const prune = (): void =>
    void pruneLogs(store, config().store).catch((err: unknown) => log.warn({ err }, 'log retention pruning failed'));
  prune();
  return setInterval(prune, 3_600_000).unref();
}
