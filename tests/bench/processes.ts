import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../../src/runner/free-port.js';
import { waitFor200 } from './client.js';
import { now } from './stats.js';

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
export async function startProcess(cmd: string, args: (port: number) => string[], readyPath: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Proc> {
  const port = await freePort('127.0.0.1');
  const t0 = now();
  const child = spawn(cmd, args(port), { detached: true, stdio: ['ignore', 'ignore', process.env.BENCH_VERBOSE ? 'inherit' : 'ignore'], env: opts.env ?? process.env });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = `http://127.0.0.1:${port}`;
  let readyMs: number;
  try {
    await Promise.race([waitFor200(`${base}${readyPath}`, opts.timeoutMs ?? 60_000), exited.then(() => Promise.reject(new Error(`${cmd} exited during start`)))]);
    readyMs = now() - t0;
  } catch (err) {
    killGroup(child, 'SIGKILL');
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
