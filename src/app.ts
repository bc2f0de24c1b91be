import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { ApiDeps } from './api/deps.js';
import { createAccounts } from './auth/accounts.js';
import { authPlugin } from './auth/plugin.js';
import { createPasswords, type Passwords } from './auth/passwords.js';
import { registerAuthRoutes } from './auth/routes.js';
import type { Config } from './config/schema.js';
import { edgePlugin } from './edge/plugin.js';
import type { Store } from './store/database.js';
import { installBodyParsers } from './api/body-parser.js';
import { installErrorHandler } from './api/error-handler.js';
import { registerChat } from './api/ollama/chat.js';
import { registerEmbed } from './api/ollama/embed.js';
import { registerGenerate } from './api/ollama/generate.js';
import { registerManageRoutes } from './api/ollama/manage.js';
import { registerModelRoutes } from './api/ollama/models.js';
import { registerRootRoutes } from './api/ollama/root.js';
import { registerOpenAi } from './api/openai/routes.js';
import { registerLlamaCpp } from './api/llamacpp/routes.js';
import type { AdminDeps } from './admin/deps.js';
import { registerAdmin } from './admin/plugin.js';
import type { ReadinessCheck } from './health/checks.js';
import { registerHealthRoutes } from './health/routes.js';
import { loggerOptions, requestId } from './logging.js';
import { createMetrics } from './metrics/registry.js';
import { installRequestMetrics, type RequestRecord } from './metrics/request-hooks.js';
import { registerMetricsRoute } from './metrics/route.js';
import { collectScheduler } from './metrics/scheduler-collector.js';
import { AlertEngine } from './alerts/engine.js';
import { registerAlertMetrics } from './alerts/metrics.js';
import { requestedModel } from './metrics/requested-model.js';
import { registerModelServerProtocol } from './metrics/model-server-protocol.js';
import type { Fleet } from './fleet/fleet.js';
import { FleetForwarder } from './fleet/forwarder.js';

export interface AppOptions {
  api: ApiDeps;
  store: Store;
  auth: Config['auth'];
  /** bcrypt cost is injectable so tests need not pay cost 12 per login. */
  passwords?: Passwords;
  /** What the admin UI needs beyond the API deps; the logs directory defaults to the config's logs_dir. */
  admin?: Partial<Omit<AdminDeps, keyof ApiDeps | 'store' | 'accounts'>>;
  logger?: FastifyServerOptions['logger'];
  bodyLimit?: number;
  /** Conditions GET /ready reports (config, store, llama-server binary). */
  readiness?: ReadinessCheck[];
  /** Called once per finished request (the request log). */
  onRequestFinished?: (record: RequestRecord) => void;
  /** Node process metrics on /metrics (default true). */
  processMetrics?: boolean;
  /** This node's part in a fleet: forwarding, fleet-wide listings, the node label on /metrics. */
  fleet?: Fleet | undefined;
}

/** Builds the Fastify app with every route; does not listen (tests use inject or an ephemeral port). */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const config = opts.api.config();
  const app = Fastify({
    logger: loggerOptions(opts.logger ?? false),
    bodyLimit: opts.bodyLimit ?? 64 * 1024 * 1024,
    // Ollama rejects wrong types rather than coercing them; unknown fields are kept and ignored.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: true,
    // The id is validated in requestId() rather than trusted as-is from the header.
    requestIdHeader: false,
    genReqId: requestId,
    // One log line per request (below) instead of Fastify's two: half the logging work on the hot path.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  const metrics = createMetrics({ processMetrics: opts.processMetrics, node: opts.fleet?.membership.selfId });
  const { scheduler, catalog, schedulable } = opts.api;
  const collector = collectScheduler(scheduler, metrics, (name) => {
    const m = catalog.resolve(name);
    return m ? schedulable(m).memoryBytes : undefined;
  });
  app.addHook('onClose', (_app, done) => {
    collector.detach();
    done();
  });
  // The request log is written first, so a listener (the admin's live Activity page) reads the new row.
  const finishedListeners = new Set<(record: RequestRecord) => void>();
  const observe = installRequestMetrics(
    app,
    metrics,
    (record) => {
      opts.onRequestFinished?.(record);
      for (const listener of finishedListeners) listener(record);
    },
    requestedModel(catalog),
  );
  const alerts = new AlertEngine({
    config: opts.api.config,
    scheduler,
    store: opts.store,
    dirs: () => [opts.admin?.dataDir?.() ?? config.data_dir, ...catalog.modelDirs],
    log: app.log.child({ module: 'alerts' }),
  });
  registerAlertMetrics(metrics.registry, alerts, scheduler);
  registerModelServerProtocol(metrics.registry, {
    scheduler,
    slotsOf: (name) => {
      const m = catalog.resolve(name);
      return m ? schedulable(m).parallel : undefined;
    },
    maxLoadedModels: () => opts.api.config().scheduler.max_loaded_models,
  });
  app.decorate('alerts', alerts);
  app.addHook('onReady', async () => alerts.start());
  app.addHook('onClose', async () => alerts.stop());
  // Registered after the metrics hook, so a request's log line also means its metrics are recorded.
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      { req: request.raw, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request completed',
    );
    done();
  });
  const api: ApiDeps = { ...opts.api, observe: opts.api.observe ?? observe, fleet: opts.fleet?.listings };
  const fleet = opts.fleet && new FleetForwarder({ ...opts.fleet, ...api, observe: api.observe });

  installBodyParsers(app, { maxDepth: config.server.json_max_depth, keepRaw: fleet !== undefined });
  installErrorHandler(app);
  await app.register(edgePlugin, {
    trustedProxies: opts.auth.trusted_proxies,
    allowedOrigins: config.server.allowed_origins,
    allowedHosts: config.server.allowed_hosts,
    bindHost: config.server.host,
    authMode: opts.auth.mode,
  });
  fleet?.installCredentialCheck(app);
  await app.register(authPlugin, {
    store: opts.store,
    config: opts.auth,
    open: { 'metrics.public': config.metrics.public },
    operationLimits: () => opts.api.config().operation_limits,
  });
  fleet?.installForwarding(app);
  const passwords = opts.passwords ?? createPasswords();
  await registerAuthRoutes(app, { store: opts.store, passwords });
  registerMetricsRoute(app, { metrics, collector, scheduler, node: opts.fleet?.membership.selfId });
  registerHealthRoutes(app, opts.readiness ?? []);
  registerRootRoutes(app, api);
  registerModelRoutes(app, api);
  registerGenerate(app, api);
  registerChat(app, api);
  registerEmbed(app, api);
  registerManageRoutes(app, api);
  registerOpenAi(app, api);
  registerLlamaCpp(app, api);
  await registerAdmin(app, {
    logsDir: () => opts.api.config().logs_dir,
    ...opts.admin,
    ...api,
    store: opts.store,
    accounts: createAccounts({ store: opts.store, passwords }),
    onRequestFinished(listener) {
      finishedListeners.add(listener);
      return () => finishedListeners.delete(listener);
    },
    alerts,
    fleetView: opts.fleet?.membership,
  });
  return app;
}
