import pino from 'pino';
import { parseDuration } from '../config/duration.js';
import { loadConfig } from '../config/load.js';
import { fleetNodeId } from '../fleet/fleet.js';
import { FleetMembership } from '../fleet/membership.js';
import { PgFleetRegistry } from '../fleet/pg-registry.js';
import { connectPostgres } from '../store/postgres/pool.js';
import { packageVersion } from '../fleet/version.js';
import { RpcServerSupervisor, workerEndpoint } from '../fleet/worker.js';
import { ensureLlamaTool } from '../provision/llama-binary.js';

/**
 * `corral worker`: runs llama.cpp's rpc-server so models on the fleet's nodes can compute on this
 * machine, and registers it in the fleet while it runs (`rpc: auto` models use every live worker).
 * Without `fleet.enabled` (and `store.url`) it only runs rpc-server, for models that name it in an `rpc:` list.
 */
export async function workerCommand(flags: { config: string; logLevel?: string | undefined }): Promise<number> {
  const log = pino(
    { level: flags.logLevel ?? process.env.CORRAL_LOG_LEVEL ?? 'info' },
    pino.destination({ sync: true }),
  );
  const { config } = await loadConfig(flags.config, { optional: true });
  const binary = await ensureLlamaTool('rpc-server', {
    backend: config.llama_server.backend,
    progress: (l) => process.stderr.write(`[llama.cpp build] ${l}\n`),
  });
  const rpc = new RpcServerSupervisor(binary, config.worker, log);
  await rpc.start();
  let membership: FleetMembership | undefined;
  if (config.fleet.enabled && config.store.url) {
    const id = fleetNodeId(config);
    const workerId = `${id}-rpc-${config.worker.port}`;
    const version = packageVersion();
    membership = new FleetMembership({
      registry: new PgFleetRegistry(
        connectPostgres(config.store.url, {
          max: 2,
          onAvailability: (up, reason) =>
            up ? log.info({}, 'fleet database reachable again') : log.warn({ err: reason }, 'fleet database'),
        }),
        true,
      ),
      selfId: workerId,
      heartbeatMs: parseDuration(config.fleet.heartbeat),
      expiryMs: parseDuration(config.fleet.expiry),
      report: () => rpc.report(workerId, version),
      log,
    });
    await membership.start();
    log.info({ node: workerId, endpoint: workerEndpoint(config.worker) }, 'worker joined the fleet');
  } else {
    log.info(
      { endpoint: workerEndpoint(config.worker) },
      'no fleet (fleet.enabled, store.url): rpc-server runs unregistered',
    );
  }
  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'worker stopping');
    await membership?.stop();
    await rpc.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return new Promise<number>(() => {});
}
