import { inject } from 'vitest';
import { HttpLlamaClient } from '../../src/llama/http-client.js';
import type { RunnerSpec } from '../../src/runner/runner.js';
import { createSocketDir, type SocketDir } from '../../src/runner/socket-dir.js';

/**
 * What a test's own Runner needs beyond its model and log file, as the gateway sets it up: a private
 * socket directory (removed by `remove()`) and the HTTP client. `tcp: true` gives the loopback fallback.
 */
export function runnerPlumbing(opts: { tcp?: boolean } = {}): Pick<RunnerSpec, 'socketDir' | 'connect'> & {
  remove(): void;
} {
  const socketDir: SocketDir | undefined = opts.tcp ? undefined : createSocketDir();
  if (!opts.tcp && !socketDir) throw new Error('no private socket directory could be created');
  return { socketDir, connect: (endpoint) => new HttpLlamaClient(endpoint), remove: () => socketDir?.remove() };
}

/** Reads a whole answer body as text. */
export async function bodyText(body: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of body) text += String(chunk);
  return text;
}

/** A Runner spec for the tiny chat fixture on one thread with 256 tokens of context, logging to `logFile`. */
export function tinySpec(
  plumbing: Pick<RunnerSpec, 'socketDir' | 'connect'>,
  logFile: string,
  extra: Partial<RunnerSpec> = {},
): RunnerSpec {
  const fixtures = inject('fixtures');
  return {
    socketDir: plumbing.socketDir,
    connect: plumbing.connect,
    model: 'tiny',
    binary: fixtures.llamaServer,
    args: ['-m', fixtures.models.chat, '-c', '256', '-t', '1', '--no-webui'],
    logFile,
    startupTimeoutMs: 30_000,
    stopTimeoutMs: 5_000,
    ...extra,
  };
}
