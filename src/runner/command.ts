import { execFile } from 'node:child_process';

export interface CommandResult {
  /** undefined when the command could not be started or was killed (e.g. by the timeout). */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Runs a short command to completion and collects its output. Never rejects: for the optional tools
 * this is used for (nvidia-smi, `llama-server --version`), absent or failing means "no answer".
 * Node's execFile rather than execa because this runs inside the long-lived gateway, where execa's
 * hundred-odd modules would stay resident for a handful of calls.
 */
export function runCommand(
  file: string,
  args: string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    // With `env`, the tool is looked up on env.PATH (how tests put stand-in tools in front).
    const child = execFile(
      file,
      args,
      { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024, ...(env ? { env } : {}) },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : undefined;
        resolve({ exitCode: code, stdout, stderr });
      },
    );
    // Nothing to read: the tool must not wait on stdin.
    child.stdin?.end();
  });
}
