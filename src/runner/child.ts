import { spawn } from 'node:child_process';

export interface ChildExit {
  /** undefined when killed by a signal or never started. */
  exitCode: number | undefined;
  signal: string | undefined;
}

export interface Child {
  pid: number | undefined;
  /** Settles (never rejects) once the process has exited, or failed to start. */
  exited: Promise<ChildExit>;
}

/**
 * Starts a long-running child as the leader of its own process group, stdout and stderr both written
 * to `output` (a file descriptor the caller may close once this returns), with exactly the environment
 * `env` (see child-env.ts). Plain child_process rather than execa, which the gateway would otherwise
 * keep resident (about a hundred modules) for this one call.
 */
export function spawnChild(file: string, args: string[], output: number, env: NodeJS.ProcessEnv): Child {
  const proc = spawn(file, args, {
    // Own process group: a stop signal reaches anything the child forks.
    detached: true,
    stdio: ['ignore', output, output],
    env,
  });
  const exited = new Promise<ChildExit>((resolve) => {
    proc.once('close', (code, signal) => resolve({ exitCode: code ?? undefined, signal: signal ?? undefined }));
    // A child that never started (ENOENT, EACCES) gets no 'close'; a started one reports through 'close'.
    proc.once('error', () => {
      if (proc.pid === undefined) resolve({ exitCode: undefined, signal: undefined });
    });
  });
  return { pid: proc.pid, exited };
}
