import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { ConfigControl, ReloadResult } from './admin/deps.js';
import { buildApp } from './app.js';
import { createPasswords } from './auth/passwords.js';
import type { Principal } from './auth/principal.js';
import type { Catalog } from './catalog/catalog.js';
import type { LoadedConfig } from './config/load.js';
import type { ConfigReloader, ReloadState } from './config/reloader.js';
import type { Config } from './config/schema.js';
import type { Fleet } from './fleet/fleet.js';
import { binaryCheck, configCheck, storeCheck, writableDirCheck } from './health/checks.js';
import type { MachineFacts } from './machine-facts.js';
import { requestLogWriter } from './metrics/request-log.js';
import type { Quantizer } from './quantize/quantizer.js';
import type { ModelPlans } from './scheduler/plans.js';
import type { Scheduler } from './scheduler/scheduler.js';
import type { Store } from './store/store.js';

/** The gateway's parts as the app sees them: routes, admin views, readiness checks and the request log. */
export interface AppParts {
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

export async function composeApp(p: AppParts): Promise<FastifyInstance> {
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

export function logReload(app: FastifyInstance, state: ReloadState): void {
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
