import { runCommand } from './command.js';

/**
 * A command prefix that makes a child receive SIGKILL when the gateway dies, however it dies: util-linux
 * `setpriv --pdeathsig` sets the kernel's parent-death signal and then executes the child in its place
 * (same pid, so the pid records and process groups are unchanged). Without it, children of a gateway
 * killed with -9 live on until the next start reaps them (see pid-registry.ts). SIGKILL rather than
 * SIGTERM: with the gateway gone nobody waits for a clean exit, and llama-server can miss a SIGTERM
 * that comes right after it starts listening.
 * undefined when setpriv is missing or too old (`--pdeathsig` appeared in util-linux 2.33).
 */
export async function deathSignalLauncher(timeoutMs = 5_000): Promise<string[] | undefined> {
  const prefix = ['setpriv', '--pdeathsig', 'KILL', '--'];
  const probe = await runCommand(prefix[0]!, [...prefix.slice(1), 'true'], timeoutMs);
  return probe.exitCode === 0 ? prefix : undefined;
}
