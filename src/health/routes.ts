import type { FastifyInstance } from 'fastify';
import type { ReadinessCheck } from './checks.js';

const CHECK_TIMEOUT_MS = 2000;

async function run(check: ReadinessCheck): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(() => check.check()),
      new Promise(
        (_, reject) =>
          (timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)),
      ),
    ]);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET /health: liveness, no I/O, so a probe never fails because a disk or child is slow.
 * GET /ready: every readiness check, run in parallel; 503 with the failing reasons otherwise.
 * A check that starts failing is logged as an error once (and its recovery once), whether /ready
 * or the watch timer found it.
 */
export function registerHealthRoutes(
  app: FastifyInstance,
  checks: ReadinessCheck[],
  options: { watchMs?: number } = {},
): void {
  const failing = new Map<string, string>();
  const runAll = async (list: ReadinessCheck[]) => {
    const results = await Promise.all(list.map(async (c) => [c.name, await run(c)] as const));
    for (const [name, err] of results) {
      if (err !== undefined && failing.get(name) !== err) app.log.error({ check: name, reason: err }, 'not ready');
      if (err === undefined && failing.has(name)) app.log.info({ check: name }, 'ready again');
      if (err === undefined) failing.delete(name);
      else failing.set(name, err);
    }
    return results;
  };
  const watched = checks.filter((c) => c.watch);
  if (watched.length) {
    const timer = setInterval(() => void runAll(watched), options.watchMs ?? 10_000).unref();
    app.addHook('onClose', async () => clearInterval(timer));
  }

  app.get('/health', { logLevel: 'warn' }, async () => ({ status: 'ok' }));
  app.get('/ready', { logLevel: 'warn' }, async (_request, reply) => {
    const results = await runAll(checks);
    const failed = results.filter(([, err]) => err !== undefined);
    const body = {
      status: failed.length ? 'not ready' : 'ready',
      checks: Object.fromEntries(results.map(([name, err]) => [name, err ?? 'ok'])),
    };
    return reply.code(failed.length ? 503 : 200).send(body);
  });
}
