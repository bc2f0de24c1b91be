import { destination } from 'pino';
import { createGateway } from '../gateway.js';
import { parseDuration } from '../config/duration.js';
import { ensureAdmin, startupAuthCheck } from '../auth/bootstrap.js';
import { missingMemorySettings } from '../memory-settings.js';

export interface ServeFlags {
  config: string;
  host?: string | undefined;
  port?: number | undefined;
}

/** Runs the gateway until SIGINT/SIGTERM, then drains and stops every child. */
export async function serve(flags: ServeFlags): Promise<number> {
  const gateway = await createGateway({
    configFile: flags.config,
    optionalConfig: true,
    // Synchronous writes: pino's default stdout stream hands every line to libuv's thread pool, and
    // waking a pool thread per request line cost more CPU than the write itself on a busy machine.
    logger: { level: process.env.CORRAL_LOG_LEVEL ?? 'info', stream: destination({ fd: 1, sync: true }) },
  });
  const { app } = gateway;
  const config = gateway.config();
  void gateway.pinned;
  const host = flags.host ?? process.env.CORRAL_HOST ?? config.server.host;
  const port = flags.port ?? (process.env.CORRAL_PORT ? Number(process.env.CORRAL_PORT) : config.server.port);
  app.log.info({ binary: gateway.binary.path, source: gateway.binary.reason }, 'llama-server binary');
  app.log.info(
    { models: gateway.catalog.list().map((m) => m.name), config: gateway.loaded.file ?? '(embedded defaults)' },
    'catalogue',
  );
  for (const w of gateway.catalog.warnings) app.log.warn(w);
  const missing = missingMemorySettings();
  if (missing.length > 0)
    app.log.info(
      { missing },
      'started without the node settings `corral` uses (see `corral doctor`): idle memory will be higher',
    );
  // Refuses auth.mode "off" beyond loopback unless forced; warns loudly for any non-loopback bind.
  for (const warning of startupAuthCheck(config.auth, host)) app.log.warn(warning);
  const boot = await ensureAdmin(gateway.store, process.env, app.log);
  for (const r of gateway.reaped) app.log.warn(r, 'stopped a llama-server left behind by a previous run');
  gateway.scheduler.on('failed', (name, rec) =>
    app.log.error(
      {
        model: name,
        reason: rec.failure.reason,
        exitCode: rec.failure.exitCode,
        lastLines: rec.failure.lastLines.slice(-5),
        consecutive: rec.consecutive,
      },
      'llama-server failed',
    ),
  );
  gateway.scheduler.on('restarting', (name, attempt) =>
    app.log.warn({ model: name, attempt }, 'restarting pinned model'),
  );
  gateway.scheduler.on('gave-up', (name, rec) =>
    app.log.error({ model: name, consecutive: rec.consecutive }, 'model is crash-looping; no more automatic restarts'),
  );
  gateway.scheduler.on('loaded', (name, ms) => app.log.info({ model: name, ms }, 'model loaded'));
  gateway.scheduler.on('unloaded', (name, reason) => app.log.info({ model: name, reason }, 'model unloaded'));
  await app.listen({ host, port });
  if (boot.status === 'setup') {
    app.log.warn(
      `no admin account yet: open http://${host.includes(':') ? `[${host}]` : host}:${port}${boot.url} to create one (valid until ${new Date(boot.expiresAt).toISOString()}), or set CORRAL_ADMIN_PASSWORD`,
    );
  }

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down: draining requests, then stopping llama-server processes');
    const drainMs = parseDuration(gateway.config().server.drain_timeout);
    // Backstop in case stopping children itself hangs: drain, then twice the stop timeout, then out.
    const timer = setTimeout(
      () => {
        app.log.warn('shutdown is taking too long; stopping children now');
        void gateway.scheduler.shutdown().then(() => process.exit(1));
      },
      drainMs + 2 * parseDuration(gateway.config().llama_server.stop_timeout) + 1000,
    );
    timer.unref();
    await gateway.close({ drainMs });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  return new Promise<number>(() => {});
}
