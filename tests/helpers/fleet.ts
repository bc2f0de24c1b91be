import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { inject } from 'vitest';
import { freePort } from '../../src/runner/free-port.js';
import { builtCli, CLI } from './cli.js';

export const FLEET_SECRET = 'a-fleet-secret-of-at-least-32-characters';

export interface FleetNodeProcess {
  id: string;
  url: string;
  dir: string;
  child: ChildProcess;
  /** Everything the node printed so far (JSON log lines and the welcome text). */
  output(): string;
  /** SIGKILL: the node dies as a crashed host would, mid-request. */
  kill(): Promise<void>;
  /** SIGTERM, then its directory is removed. */
  stop(): Promise<void>;
}

/**
 * Starts `corral serve` as a process of its own, in a fresh directory, as one node of a fleet on
 * `database`; resolves once it has joined. `config` is merged over a minimal test config.
 */
export async function startNode(
  id: string,
  database: string,
  config: Record<string, unknown>,
): Promise<FleetNodeProcess> {
  await builtCli();
  const fixtures = inject('fixtures');
  const dir = await mkdtemp(join(tmpdir(), `corral-node-${id}-`));
  await mkdir(join(dir, 'config'), { recursive: true });
  const configFile = join(dir, 'config', 'corral.yaml');
  const port = await freePort();
  const full = {
    llama_server: { binary: fixtures.llamaServer, args: ['-t', '1', '--ignore-eos'], stop_timeout: '5s' },
    defaults: { ctx_size: 512 },
    ollama_store: 'off',
    ...config,
    store: { url: database, ...(config.store as object) },
    fleet: { enabled: true, node_id: id, secret: FLEET_SECRET, ...(config.fleet as object) },
  };
  await writeFile(configFile, stringify(full));
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile, '--port', String(port)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CORRAL_LOG_FORMAT: 'json', CORRAL_ADMIN_PASSWORD: 'fleet-test-password' },
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => {
      if (out.includes('"msg":"joined the fleet"')) resolve();
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`node ${id} exited (${code}) before joining:\n${out}`)));
  }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const exited = (): Promise<unknown> =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
  return {
    id,
    url: `http://127.0.0.1:${port}`,
    dir,
    child,
    output: () => out,
    async kill() {
      const done = exited();
      child.kill('SIGKILL');
      await done;
    },
    async stop() {
      const done = exited();
      child.kill('SIGTERM');
      await done;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface WorkerProcess {
  endpoint: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `corral worker` (an rpc-server on a port of its own), registered on `database`; resolves once joined. */
export async function startWorker(id: string, database: string): Promise<WorkerProcess> {
  await builtCli();
  const dir = await mkdtemp(join(tmpdir(), `corral-worker-${id}-`));
  const configFile = join(dir, 'corral.yaml');
  const port = await freePort();
  await writeFile(
    configFile,
    stringify({
      store: { url: database },
      fleet: { enabled: true, node_id: id, secret: FLEET_SECRET },
      worker: { port, memory: '1GB' },
    }),
  );
  const child = spawn(process.execPath, [CLI, 'worker', '--config', configFile], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => {
      if (out.includes('"msg":"worker joined the fleet"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker ${id} exited (${code}) before joining:\n${out}`)));
  }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    endpoint: `127.0.0.1:${port}`,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const done = once(child, 'exit');
        child.kill('SIGTERM');
        await done;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts processes together; if one fails to start, those that did are stopped before the failure is
 * thrown, so a failed setup leaves nothing running.
 */
type Stoppable = { stop(): Promise<void> };

export async function startAll<T extends readonly Promise<Stoppable>[]>(
  starts: [...T],
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value as Stoppable] : []));
  if (!failed) return started as { -readonly [K in keyof T]: Awaited<T[K]> };
  await Promise.all(started.map((p) => p.stop()));
  throw failed.reason;
}

/** Polls `probe` until it returns a value (bounded): for what another process does in its own time. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
