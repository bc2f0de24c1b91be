import type { FastifyRequest } from 'fastify';
import type { CatalogModel } from '../catalog/catalog.js';
import { UpstreamUnreachable } from '../errors.js';
import type { Runner } from '../runner/runner.js';
import { abortable } from '../scheduler/abortable.js';
import type { AcquireOptions, Lease } from '../scheduler/types.js';
import type { ApiDeps } from './deps.js';

/** How long a refused connection may wait for the gateway to see its child's exit. */
const EXIT_NOTICE_MS = 2_000;

/**
 * Acquires a runner for `model` and makes the request's first upstream call on it. A child can die
 * after it was leased but before it was reached: its port refuses the connection while the gateway
 * has not yet handled the exit. Such a request never reached llama-server, so once the exit is handled
 * (the crashed runner forgotten) it is tried once more on a fresh runner, instead of failing with 502
 * where a retry a few milliseconds later would succeed. Only a request that never left the gateway
 * counts: one whose connection broke later may be what crashed the child, and must not crash the next
 * one too.
 * On failure the lease is released; on success the caller owns it.
 */
export async function leaseAndStart<T>(
  deps: ApiDeps,
  request: FastifyRequest,
  model: CatalogModel,
  opts: AcquireOptions,
  first: (runner: Runner) => Promise<T>,
): Promise<{ lease: Lease; value: T }> {
  for (let attempt = 1; ; attempt++) {
    const lease = await deps.scheduler.acquire(deps.schedulable(model), opts);
    deps.observe?.leased?.(request, model.name, lease);
    const runner = lease.runner;
    try {
      if (runner.pool === undefined)
        throw new UpstreamUnreachable(
          `llama-server for model "${model.name}" exited before the request reached it`,
          false,
        );
      return { lease, value: await first(runner) };
    } catch (err) {
      lease.release();
      if (attempt > 1 || opts.signal?.aborted || !neverSent(err)) throw err;
      if (!(await exitHandled(runner, opts.signal))) throw err;
      request.log.warn(
        { model: model.name },
        'llama-server was gone before the request reached it; retrying on a fresh one',
      );
    }
  }
}

/**
 * The request never left the gateway: it was not yet being written to a socket when it failed (the port
 * refused the connection, or the pool was torn down for the exit while the request waited in it). Error
 * codes cannot tell this apart: a request waiting inside llama-server gets the same "destroyed" error as
 * one still waiting in our pool when the exit is handled before its socket's close.
 */
function neverSent(err: unknown): boolean {
  return err instanceof UpstreamUnreachable && !err.delivered;
}

/** Resolves true once the runner's exit has been handled, false if it still looks alive after a while. */
async function exitHandled(runner: Runner, signal: AbortSignal | undefined): Promise<boolean> {
  if (runner.pid === undefined) return true;
  let onExit: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const seen = new Promise<boolean>((resolve) => {
    onExit = () => resolve(true);
    runner.once('exit', onExit);
    timer = setTimeout(() => resolve(false), EXIT_NOTICE_MS);
  });
  try {
    return await abortable(seen, signal);
  } finally {
    clearTimeout(timer);
    runner.off('exit', onExit!);
  }
}
