import { resolve } from 'node:path';
import { type DestinationStream, destination } from 'pino';
import { createGateway, type Gateway } from '../gateway.js';
import { parseDuration } from '../config/duration.js';
import { type EnsureAdminResult, ensureAdmin, startupAuthCheck } from '../auth/bootstrap.js';
import { missingMemorySettings } from '../memory-settings.js';

export interface ServeFlags {
  config: string;
  host?: string | undefined;
  port?: number | undefined;
  logFormat?: string | undefined;
  logLevel?: string | undefined;
}

export function parsePort(value: string, from: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65535)
    throw new Error(`${from} must be a port number (0-65535), not "${value}"`);
  return port;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * Where log lines go: human-readable lines on a terminal, JSON lines (one object each) otherwise.
 * Synchronous writes: pino's default stdout stream hands every line to libuv's thread pool, and waking
 * a pool thread per request line cost more CPU than the write itself on a busy machine.
 */
async function logStream(format: string): Promise<DestinationStream> {
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  if (!pretty) return destination({ fd: 1, sync: true });
  const { default: pinoPretty } = await import('pino-pretty');
  return pinoPretty({ sync: true, colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l' });
}

function logOptions(flags: ServeFlags): { format: string; level: string } {
  const format = flags.logFormat ?? process.env.CORRAL_LOG_FORMAT ?? 'auto';
  if (!['auto', 'pretty', 'json'].includes(format)) throw new Error(`log format "${format}": use pretty, json or auto`);
  const level = flags.logLevel ?? process.env.CORRAL_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) throw new Error(`log level "${level}": use ${LEVELS.join(', ')}`);
  return { format, level };
}

/** What a newcomer needs first, printed apart from the log: the address, the setup link, the models folder. */
function welcome(url: string, setup: string | undefined, modelsDirs: string[], expiresAt?: number): string {
  const lines = [`Corral is listening on ${url}`];
  if (setup) {
    const until = expiresAt ? ` (valid until ${new Date(expiresAt).toLocaleTimeString()})` : '';
    lines.push(`First run: create the admin account at ${url}${setup}${until}`);
  }
  lines.push(`Models: put .gguf files in ${modelsDirs.join(', ')}, or pull them from the admin UI`);
  const width = Math.max(...lines.map((l) => l.length));
  const rule = '─'.repeat(Math.min(width, 118));
  return `\n${rule}\n${lines.join('\n')}\n${rule}\n\n`;
}

/** Runs the gateway until SIGINT/SIGTERM, then drains and stops every child. */
export async function serve(flags: ServeFlags): Promise<number> {
  const log = logOptions(flags);
  const envPort = process.env.CORRAL_PORT ? parsePort(process.env.CORRAL_PORT, 'CORRAL_PORT') : undefined;
  const gateway = await createGateway({
    configFile: flags.config,
    optionalConfig: true,
    logger: { level: log.level, stream: await logStream(log.format) },
  });
  const config = gateway.config();
  void gateway.pinned;
  const host = flags.host ?? process.env.CORRAL_HOST ?? config.server.host;
  const port = flags.port ?? envPort ?? config.server.port;
  logStartup(gateway, host);
  const boot = await ensureAdmin(gateway.store, process.env, gateway.app.log);
  for (const r of gateway.reaped) gateway.app.log.warn(r, 'stopped a llama-server left behind by a previous run');
  logSchedulerEvents(gateway);
  await gateway.app.listen({ host, port });
  greet(gateway, host, port, boot);
  stopOnSignals(gateway);
  return new Promise<number>(() => {});
}

/** What the gateway found at start: the binary and its backend, the models, missing runtime flags, auth risks. */
function logStartup(gateway: Gateway, host: string): void {
  const { app } = gateway;
  const bin = gateway.binary;
  app.log.info(
    { binary: bin.path, source: bin.reason, backend: gateway.backend.name, devices: gateway.backend.devices },
    `llama-server runs on ${gateway.backend.description}`,
  );
  for (const warning of gateway.backend.warnings) app.log.warn(warning);
  app.log.info(
    { models: gateway.catalog.list().map((m) => m.name), config: gateway.loaded.file ?? '(embedded defaults)' },
    'catalogue',
  );
  for (const w of gateway.catalog.warnings) app.log.warn(w);
  const missing = missingMemorySettings();
  if (missing.length > 0)
    app.log.info(
      { missing },
      'started without the runtime flags of bin/corral (`corral serve` and `npm start` set them): ' +
        'idle memory will be higher',
    );
  // Refuses auth.mode "off" beyond loopback unless forced; warns loudly for any non-loopback bind.
  for (const warning of startupAuthCheck(gateway.config().auth, host)) app.log.warn(warning);
}

/** The scheduler's failures, restarts, loads and unloads, as log lines. */
function logSchedulerEvents(gateway: Gateway): void {
  const { app, scheduler } = gateway;
  scheduler.on('failed', (name, rec) =>
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
  scheduler.on('restarting', (name, attempt) => app.log.warn({ model: name, attempt }, 'restarting pinned model'));
  scheduler.on('gave-up', (name, rec) =>
    app.log.error({ model: name, consecutive: rec.consecutive }, 'model is crash-looping; no more automatic restarts'),
  );
  scheduler.on('loaded', (name, ms) => app.log.info({ model: name, ms }, 'model loaded'));
  scheduler.on('unloaded', (name, reason) => app.log.info({ model: name, reason }, 'model unloaded'));
}

/** Once listening: the first-run warning in the log, and the welcome block on stderr. */
function greet(gateway: Gateway, host: string, port: number, boot: EnsureAdminResult): void {
  const { app } = gateway;
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  const dirs = gateway.catalog.modelDirs.map((d) => resolve(d));
  if (boot.status === 'setup') {
    app.log.warn(`no admin account yet: open ${url}${boot.url} to create one, or set CORRAL_ADMIN_PASSWORD`);
  }
  process.stderr.write(
    welcome(
      url,
      boot.status === 'setup' ? boot.url : undefined,
      dirs,
      boot.status === 'setup' ? boot.expiresAt : undefined,
    ),
  );
}

/** SIGINT/SIGTERM: drain, stop every child, exit; a backstop exits anyway if stopping hangs. */
function stopOnSignals(gateway: Gateway): void {
  const { app } = gateway;
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
}
