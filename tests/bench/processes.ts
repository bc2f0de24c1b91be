import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort } from '../../src/runner/free-port.js';
import { waitFor200 } from './client.js';
import { now } from './stats.js';

/** The `corral` program as users start it (bin/corral: the runtime flags, then dist/src/cli.js). */
export const CORRAL = resolve(import.meta.dirname, '../../../bin/corral');

/**
 * `corral serve` with `configFile` through the launcher (its node flags and allocator setting, as
 * `npm start` runs it), on loopback; ready once `readyPath` answers. Logs at BENCH_CORRAL_LOG_LEVEL.
 */
export function startCorralServe(configFile: string, readyPath = '/health', logLevel = 'warn'): Promise<Proc> {
  const env = { ...process.env, CORRAL_LOG_LEVEL: process.env.BENCH_CORRAL_LOG_LEVEL ?? logLevel };
  const args = (port: number) => ['serve', '--config', configFile, '--host', '127.0.0.1', '--port', String(port)];
  return startProcess(CORRAL, args, readyPath, { env });
}

export interface Proc {
  child: ChildProcess;
  base: string;
  /** ms from spawn until its readiness URL answered 200. */
  readyMs: number;
  stop(): Promise<void>;
}

/** Resident set size of a process in bytes (Linux). */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Spawns a server in its own process group and waits for `readyPath` to answer 200. `stop` kills the
 * whole group (router mode and Corral have children of their own) and waits for the exit.
 */
export async function startProcess(
  cmd: string,
  args: (port: number) => string[],
  readyPath: string,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; readyLine?: RegExp } = {},
): Promise<Proc> {
  const port = await freePort('127.0.0.1');
  const t0 = now();
  const { readyLine } = opts;
  const output = readyLine ? 'pipe' : process.env.BENCH_VERBOSE ? 'inherit' : 'ignore';
  const child = spawn(cmd, args(port), {
    detached: true,
    stdio: ['ignore', readyLine ? 'pipe' : 'ignore', output],
    env: opts.env ?? process.env,
  });
  // A spawn that fails (missing or not executable) emits 'error' and never 'exit': fail the start, so the
  // caller's cleanup stops what it started before, instead of the process dying of an unhandled event.
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = `http://127.0.0.1:${port}`;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let readyMs: number;
  try {
    const ready = readyLine
      ? lineThenHealth(child, readyLine, `${base}${readyPath}`, timeoutMs)
      : waitFor200(`${base}${readyPath}`, timeoutMs);
    const exit = exited.then(() => Promise.reject(new Error(`${cmd} exited during start`)));
    await Promise.race([ready, exit, spawnFailed]);
    readyMs = now() - t0;
  } catch (err) {
    if (child.pid !== undefined) killGroup(child, 'SIGKILL');
    throw err;
  }
  return {
    child,
    base,
    readyMs,
    async stop(graceful = true) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, graceful ? 'SIGTERM' : 'SIGKILL');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/**
 * Waits for the line a process prints once it is ready, then confirms with one request: the tightest
 * a supervisor can know, and without the 1 ms polling loop that competes with the load for CPU.
 */
async function lineThenHealth(child: ChildProcess, line: RegExp, url: string, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line after ${timeoutMs} ms`)), timeoutMs);
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen = (seen + chunk.toString('latin1')).slice(-4096);
      if (!line.test(seen)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
  // Keep draining output so a chatty process never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  await waitFor200(url, timeoutMs);
}
