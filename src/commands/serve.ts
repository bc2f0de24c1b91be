import { createGateway } from '../gateway.js';
import { parseDuration } from '../config/duration.js';
import { ensureAdmin, startupAuthCheck } from '../auth/bootstrap.js';

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
    logger: { level: process.env.CORRAL_LOG_LEVEL ?? 'info' },
  });
  const { app } = gateway;
  const config = gateway.config();
  const host = flags.host ?? process.env.CORRAL_HOST ?? config.server.host;
  const port = flags.port ?? (process.env.CORRAL_PORT ? Number(process.env.CORRAL_PORT) : config.server.port);
  app.log.info({ binary: gateway.binary.path, source: gateway.binary.reason }, 'llama-server binary');
  app.log.info({ models: gateway.catalog.list().map((m) => m.name), config: gateway.loaded.file ?? '(embedded defaults)' }, 'catalogue');
  for (const w of gateway.catalog.warnings) app.log.warn(w);
  // Refuses auth.mode "off" beyond loopback unless forced; warns loudly for any non-loopback bind.
  for (const warning of startupAuthCheck(config.auth, host)) app.log.warn(warning);
  const boot = await ensureAdmin(gateway.store, process.env, app.log);
  await app.listen({ host, port });
  if (boot.status === 'setup') {
    app.log.warn(`no admin account yet: open http://${host.includes(':') ? `[${host}]` : host}:${port}${boot.url} to create one (valid until ${new Date(boot.expiresAt).toISOString()}), or set CORRAL_ADMIN_PASSWORD`);
  }

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down: draining requests, then stopping llama-server processes');
    const drainMs = parseDuration(config.server.drain_timeout);
    const timer = setTimeout(() => {
      app.log.warn('drain timeout reached; stopping children now');
      void gateway.scheduler.shutdown().then(() => process.exit(1));
    }, drainMs);
    timer.unref();
    await gateway.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  return new Promise<number>(() => {});
}
