import { readFileSync } from 'node:fs';

const WINDOW_MS = 50;
/** Busy clock ticks (1/100 s, summed over all cores) a window may hold and still count as quiet. */
const QUIET_TICKS = 1;

/** Busy and total clock ticks of the whole machine so far, from the first line of /proc/stat. */
function cpuTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields.
  return { busy: total - fields[3]! - (fields[4] ?? 0), total };
}

/**
 * Resolves once the machine has spent a 50 ms window (nearly) idle, or after `maxMs` regardless.
 * On a machine without /proc it returns at once.
 */
export async function untilQuiet(maxMs = 2000): Promise<void> {
  const deadline = performance.now() + maxMs;
  try {
    let prev = cpuTicks();
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, WINDOW_MS));
      const cur = cpuTicks();
      if (cur.busy - prev.busy <= QUIET_TICKS) return;
      prev = cur;
    }
  } catch {
    // no /proc/stat: nothing to wait for
  }
}
