/**
 * Signals a child's whole process group (children run detached, as group leaders), falling back
 * to the process itself; a process that is already gone is not an error.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
