import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { readFile } from 'node:fs/promises';
import type { ReloadResult } from './admin/deps.js';
import { accountsFromStore, requestLogFromStore } from './admin/store-bridge.js';
import { createAccounts } from './auth/accounts.js';
import { createPasswords } from './auth/passwords.js';
import { createApiToken } from './auth/tokens.js';
import { buildApp } from './app.js';
import { Catalog, type CatalogModel } from './catalog/catalog.js';
import { binaryCheck, configCheck, writableDirCheck } from './health/checks.js';
import { parseDuration } from './config/duration.js';
import { loadConfig, type LoadedConfig } from './config/load.js';
import { ConfigReloader, type ReloadState, type ReloaderEvents } from './config/reloader.js';
import type { Principal } from './auth/principal.js';
import type { Config } from './config/schema.js';
import { HttpLlamaClient } from './llama/http-client.js';
import { requestLogWriter } from './metrics/request-log.js';
import { ensureLlamaServer, type ResolvedBinary } from './provision/llama-binary.js';
import { PidRegistry, type ReapResult } from './runner/pid-registry.js';
import { deathSignalLauncher } from './runner/death-signal.js';
import { offloadDevices } from './runner/devices.js';
import { Runner } from './runner/runner.js';
import { createSocketDir, type SocketDir } from './runner/socket-dir.js';
import { runnerSpec, type RunnerSettings } from './runner/spec.js';
import { nvidiaVram } from './scheduler/budget.js';
import { ModelPlans, type Machine, schedulerPolicy } from './scheduler/plans.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { SchedulableModel } from './scheduler/types.js';
import { openDatabase, type Store } from './store/database.js';
import { pruneLogs } from './store/retention.js';

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
  const catalog = new Catalog({ config: first, baseDir: loaded.baseDir, cwd });
  await catalog.refresh();
  // Before anything is spawned: children a gateway killed with -9 left behind still hold memory and sockets.
  const pids = new PidRegistry(join(resolve(cwd, first.data_dir), 'pids'));
  const reaped = await pids.reapOrphans(parseDuration(first.llama_server.stop_timeout));
  const socketDir = privateSocketDir(first, env);

  let policy = schedulerPolicy(first, catalog, machine);
  const reloader: ConfigReloader = new ConfigReloader(loaded, {
    env,
    watch: opts.watchConfig,
    apply: async (next, previous) => {
      await reprovision(machine, previous.config, next.config, env);
      catalog.reconfigure({ config: next.config, baseDir: next.baseDir, cwd });
      await catalog.refresh();
      policy = schedulerPolicy(next.config, catalog, machine);
      const changes = scheduler.reconcile();
      void scheduler.loadPinned(plans.pinned());
      return changes;
    },
  });
  const config = (): Config => reloader.current().config;
  const plans = new ModelPlans({ catalog, config, binary: () => machine.binary.path });
  const runners = { cwd, env, pids, machine, socketDir };
  const scheduler = new Scheduler({
    makeRunner: (m, ctxSize) => new Runner(runnerSpec(m.launch, ctxSize, m.parallel, config(), settings(runners))),
    policy: () => policy,
    resolve: plans.resolve,
  });

  const store = openDatabase(resolve(cwd, first.store.path));
  const app = await composeApp({ catalog, scheduler, plans, store, reloader, cwd, machine, logger: opts.logger });
  // Startup warnings are logged by serve; these are the ones a later refresh (pull, delete, reload) finds.
  catalog.onWarning = (w) => app.log.warn(w);
  if (!socketDir) app.log.warn('llama-server children listen on loopback TCP, each with its own API key');
  reloader.on('reload', (state) => logReload(app, state));
  const draining = refuseWhileDraining(app);
  const pinned = scheduler.loadPinned(plans.pinned());
  const pruner = startPruning(store, config);

  return {
    app,
    scheduler,
    catalog,
    schedulable: plans.schedulable,
    get binary() {
      return machine.binary;
    },
    config,
    get loaded() {
      return reloader.current();
    },
    store,
    pids,
    reaped,
    pinned,
    events: reloader,
    reload: () => reloader.reload(),
    reloadState: () => reloader.state(),
    async close(closeOpts = {}) {
      draining.start();
      await reloader.close();
      if (closeOpts.drainMs) await scheduler.drain(closeOpts.drainMs);
      await app.close();
      await scheduler.shutdown();
      socketDir?.remove();
      clearInterval(pruner);
      store.close();
    },
  };
}

/** What the gateway learns about the machine once: the binary and what it offloads to, the launcher. */
interface MachineFacts extends Machine {
  binary: ResolvedBinary;
  launcher: string[] | undefined;
}

async function inspectMachine(config: Config, env: NodeJS.ProcessEnv): Promise<MachineFacts> {
  const [binary, vramBytes, launcher] = await Promise.all([
    probeBinary(config, env),
    nvidiaVram(),
    deathSignalLauncher(),
  ]);
  return { ...binary, vramBytes, launcher };
}

/** The configured llama-server (built if needed), and whether it keeps everything in RAM, which the kernel frees as an evicted child exits. */
async function probeBinary(
  config: Config,
  env: NodeJS.ProcessEnv,
): Promise<{ binary: ResolvedBinary; cpuOnly: boolean }> {
  const binary = await ensureLlamaServer({
    configured: config.llama_server.binary,
    env,
    progress: (l) => process.stderr.write(`[llama-server build] ${l}\n`),
  });
  return { binary, cpuOnly: (await offloadDevices(binary.path))?.length === 0 };
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
    socketDir: r.socketDir,
    connect: (endpoint) => new HttpLlamaClient(endpoint),
  };
}

/** A reload that names another binary provisions and probes it before anything else changes. */
async function reprovision(
  machine: MachineFacts,
  before: Config,
  after: Config,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  if (after.llama_server.binary !== before.llama_server.binary) Object.assign(machine, await probeBinary(after, env));
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
  store: Store;
  reloader: ConfigReloader;
  cwd: string;
  machine: MachineFacts;
  logger: FastifyServerOptions['logger'];
}

async function composeApp(p: AppParts): Promise<FastifyInstance> {
  const { store, reloader, cwd, machine } = p;
  const config = (): Config => reloader.current().config;
  const loaded = (): LoadedConfig => reloader.current();
  const passwords = createPasswords();
  let recordUsage: (principal: Principal | null | undefined, tokens: number) => void = () => {};
  const app = await buildApp({
    api: { catalog: p.catalog, scheduler: p.scheduler, config, schedulable: p.plans.schedulable },
    store,
    auth: config().auth,
    passwords,
    admin: {
      binary: machine.binary,
      configControl: {
        file: () => loaded().file,
        source: async () =>
          loaded().file ? readFile(loaded().file!, 'utf8').catch(() => loaded().source) : loaded().source,
        lastReload: () => reloadResult(reloader.state()),
        reload: async () => reloadResult(await reloader.reload())!,
      },
      logsDir: () => resolve(cwd, config().logs_dir),
      dataDir: () => resolve(cwd, config().data_dir),
      accounts: accountsFromStore(store, createAccounts({ store, passwords }), (o) => createApiToken(store, o)),
      requestLog: requestLogFromStore(store),
    },
    logger: p.logger,
    bodyLimit: config().server.body_limit,
    readiness: [
      configCheck(config),
      writableDirCheck('data directory', () => resolve(cwd, config().data_dir)),
      // llama-server's output goes nowhere else: a model cannot start without its log file.
      writableDirCheck('logs directory', () => resolve(cwd, config().logs_dir)),
      { name: 'store', check: () => void store.db.prepare('SELECT 1').get() },
      binaryCheck(() => machine.binary.path),
    ],
    onRequestFinished: requestLogWriter(store.requestLog, (principal, tokens) => recordUsage(principal, tokens)),
  });
  recordUsage = (principal, tokens) => app.corralAuth.recordTokenUsage(principal, tokens);
  return app;
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
function startPruning(store: Store, config: () => Config): NodeJS.Timeout {
  const prune = (): void => void pruneLogs(store, config().store);
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
