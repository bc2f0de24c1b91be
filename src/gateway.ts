import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { readFile } from 'node:fs/promises';
import type { ConfigControl, ReloadResult } from './admin/deps.js';
import { createPasswords } from './auth/passwords.js';
import { buildApp } from './app.js';
import { Catalog, type CatalogModel } from './catalog/catalog.js';
import { type CatalogWatcher, catalogRoots, watchCatalog } from './catalog/watch.js';
import { binaryCheck, configCheck, storeCheck, writableDirCheck } from './health/checks.js';
import { parseDuration } from './config/duration.js';
import { loadConfig, type LoadedConfig } from './config/load.js';
import { ConfigReloader, type ReloadState, type ReloaderEvents } from './config/reloader.js';
import type { Principal } from './auth/principal.js';
import type { Config } from './config/schema.js';
import { HttpLlamaClient } from './llama/http-client.js';
import { requestLogWriter } from './metrics/request-log.js';
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

  let policy = withRpcGroups(schedulerPolicy(first, catalog, machine), catalog.list());
  let fleet: Fleet | undefined;
  // A CPU-only llama-server offloads every layer to its rpc workers; a GPU keeps a share of them.
  const deviceBytes = (): number => (machine.cpuOnly ? 0 : machine.vramBytes);
  // The fleet logs through the app's logger once the app exists.
  let fleetLog: Pick<FastifyInstance['log'], 'info' | 'warn'> = { info: () => {}, warn: () => {} };
  const reloader: ConfigReloader = new ConfigReloader(loaded, {
    env,
    watch: opts.watchConfig,
    apply: async (next, previous) => {
      await reprovision(machine, previous.config, next.config, env);
      catalog.reconfigure({ config: next.config, baseDir: next.baseDir, cwd, env });
      await catalog.refresh();
      files = await rewatch(files, catalog, scheduler);
      policy = withRpcGroups(schedulerPolicy(next.config, catalog, machine), catalog.list());
      const changes = scheduler.reconcile();
      void scheduler.loadPinned(plans.pinned());
      return changes;
    },
  });
  const config = (): Config => reloader.current().config;
  const plans = new ModelPlans({
    catalog,
    config,
    binary: () => machine.binary.path,
    gpuLayers: () => machine.backend.gpuLayers,
    adjust: (plan) => rpcPlan(plan, liveWorkers(fleet?.membership), deviceBytes()),
  });
  const runners = { cwd, env, pids, machine, socketDir };
  const scheduler = new Scheduler({
    makeRunner: (m, ctxSize, load) =>
      runnerFor(
        m,
        (launch) => runnerSpec(launch, ctxSize, m.parallel, config(), settings(runners), load),
        (parts) =>
          workerLease({
            ...parts,
            localBytes: deviceBytes(),
            fleet: fleet && { membership: fleet.membership, registry: fleet.registry, expiryMs: fleet.expiryMs },
          }),
      ),
    policy: () => policy,
    resolve: plans.resolve,
  });
  // Another Ollama pulling into the store it shares, or GGUFs copied into a models directory, show up
  // without a restart; a model whose file went or changed is unloaded or restarted once idle.
  let files = await watchCatalog(catalog, () => void scheduler.reconcile());

  const quantizer = new Quantizer({
    binary: () => machine.binary.path,
    backend: () => config().llama_server.backend,
    launcher: () => machine.launcher,
    env,
    childEnv: () => childEnvironment(env, config().llama_server.pass_env),
    pids,
  });
  const leftovers = await quantizer.sweep(catalog.stores.target);
  const storeEvents = storeReporter();
  const store = await openStore(first.store, cwd, storeEvents);
  fleet = first.fleet.enabled
    ? createFleet({
        config: first,
        env,
        catalog,
        scheduler,
        store,
        schedulable: plans.schedulable,
        version: packageVersion(),
        log: { info: (o, m) => fleetLog.info(o, m), warn: (o, m) => fleetLog.warn(o, m) },
      })
    : undefined;
  const app = await composeApp({
    catalog,
    scheduler,
    plans,
    quantizer,
    store,
    reloader,
    cwd,
    machine,
    fleet,
    logger: opts.logger,
  });
  storeEvents.attach(app.log.child({ module: 'store' }));
  fleetLog = app.log.child({ module: 'fleet' });
  fleet?.joinOnListen(app);
  for (const file of leftovers) app.log.warn({ file }, 'removed what an interrupted quantize left in the blobs');
  // Startup warnings are logged by serve; these are the ones a later refresh (pull, delete, reload) finds.
  catalog.onWarning = (w) => app.log.warn(w);
  if (!socketDir) app.log.warn('llama-server children listen on loopback TCP, each with its own API key');
  reloader.on('reload', (state) => logReload(app, state));
  const draining = refuseWhileDraining(app);
  const pinned = scheduler.loadPinned(plans.pinned());
  const pruner = startPruning(store, config, app.log);

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
    pids,
    reaped,
    pinned,
    events: reloader,
    reload: () => reloader.reload(),
    reloadState: () => reloader.state(),
    async close(closeOpts = {}) {
      draining.start();
      // Quantizing can take many minutes: cancelled now rather than after the drain.
      await quantizer.close();
      await reloader.close();
      await files.close();
      // Leaving first: the others stop forwarding here while the last requests drain.
      await fleet?.leave();
      if (closeOpts.drainMs) await scheduler.drain(closeOpts.drainMs);
      await app.close();
      await scheduler.shutdown();
      socketDir?.remove();
      clearInterval(pruner);
      await store.close();
    },
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

interface AppParts {
  catalog: Catalog;
  scheduler: Scheduler;
  plans: ModelPlans;
  quantizer: Quantizer;
  store: Store;
  reloader: ConfigReloader;
  cwd: string;
  machine: MachineFacts;
  fleet: Fleet | undefined;
  logger: FastifyServerOptions['logger'];
}

async function composeApp(p: AppParts): Promise<FastifyInstance> {
  const { store, reloader, cwd, machine } = p;
  const config = (): Config => reloader.current().config;
  const passwords = createPasswords();
  let recordUsage: (principal: Principal | null | undefined, tokens: number) => void = () => {};
  const app = await buildApp({
    api: {
      catalog: p.catalog,
      scheduler: p.scheduler,
      config,
      schedulable: p.plans.schedulable,
      quantizer: p.quantizer,
    },
    store,
    auth: config().auth,
    passwords,
    admin: {
      binary: machine.binary,
      backend: () => machine.backend,
      configControl: configControl(reloader),
      logsDir: () => resolve(cwd, config().logs_dir),
      dataDir: () => resolve(cwd, config().data_dir),
    },
    logger: p.logger,
    bodyLimit: config().server.body_limit,
    readiness: [
      configCheck(config),
      writableDirCheck('data directory', () => resolve(cwd, config().data_dir)),
      // llama-server's output goes nowhere else: a model cannot start without its log file.
      writableDirCheck('logs directory', () => resolve(cwd, config().logs_dir)),
      storeCheck(store),
      binaryCheck(() => machine.binary.path),
      ...(p.fleet ? [p.fleet.readiness] : []),
    ],
    fleet: p.fleet,
    onRequestFinished: requestLogWriter(store.requestLog, (principal, tokens) => recordUsage(principal, tokens)),
  });
  recordUsage = (principal, tokens) => app.corralAuth.recordTokenUsage(principal, tokens);
  return app;
}

/** The admin UI's view of the config file and its reloads. */
function configControl(reloader: ConfigReloader): ConfigControl {
  const loaded = (): LoadedConfig => reloader.current();
  return {
    file: () => loaded().file,
    source: async () =>
      loaded().file ? readFile(loaded().file!, 'utf8').catch(() => loaded().source) : loaded().source,
    lastReload: () => reloadResult(reloader.state()),
    reload: async () => reloadResult(await reloader.reload())!,
    nextReload: (timeoutMs) =>
      new Promise((done) => {
        const onReload = (state: ReloadState): void => {
          clearTimeout(timer);
          done(reloadResult(state));
        };
        const timer = setTimeout(() => {
          reloader.off('reload', onReload);
          done(undefined);
        }, timeoutMs);
        reloader.once('reload', onReload);
      }),
  };
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

function logReload(app: FastifyInstance, state: ReloadState): void {
  if (state.ok) app.log.info({ changes: state.changes }, 'config reloaded');
  else app.log.error({ problems: state.problems }, 'config reload rejected; still serving the last good config');
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
