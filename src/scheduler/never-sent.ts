import { UpstreamUnreachable } from '../errors.js';
import { abortable } from './abortable.js';
import type { SupervisedRunner } from './types.js';

/** How long a request that never reached its child may wait for the gateway to see that child's exit. */
const EXIT_NOTICE_MS = 2_000;

/**
 * The request never left the gateway: it was not yet written to a connected socket when it failed (the
 * socket refused the connection, or the client was closed for the exit while the request waited). Error
 * codes cannot tell this apart: a request waiting inside llama-server gets the same reset as one whose
 * connection was refused, so only the transport's own record of the write counts.
 */
export function neverSent(err: unknown): boolean {
  return err instanceof UpstreamUnreachable && !err.delivered;
}

/** Resolves true once the runner's exit has been handled, false if it still looks alive after a while. */
export async function exitHandled(runner: SupervisedRunner, signal: AbortSignal | undefined): Promise<boolean> {
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
