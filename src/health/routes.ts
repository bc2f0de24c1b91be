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
 */
export function registerHealthRoutes(app: FastifyInstance, checks: ReadinessCheck[]): void {
  app.get('/health', { logLevel: 'warn' }, async () => ({ status: 'ok' }));
  app.get('/ready', { logLevel: 'warn' }, async (_request, reply) => {
    const results = await Promise.all(checks.map(async (c) => [c.name, await run(c)] as const));
    const failed = results.filter(([, err]) => err !== undefined);
    const body = {
      status: failed.length ? 'not ready' : 'ready',
      checks: Object.fromEntries(results.map(([name, err]) => [name, err ?? 'ok'])),
    };
    return reply.code(failed.length ? 503 : 200).send(body);
  });
}
