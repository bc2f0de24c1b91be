import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PidRecorder } from './runner.js';
import { signalGroup } from './signal-group.js';

interface PidRecord {
  pid: number;
  model: string;
  binary: string;
  /** The gateway that spawned it: while that one lives, the child is not an orphan. */
  gatewayPid: number;
  startedAt: string;
}

export interface ReapResult {
  pid: number;
  model: string;
  /** False when it had to be SIGKILLed. */
  graceful: boolean;
}

/** Whether `pid` is a running process (a zombie is not). */
export function processAlive(pid: number): boolean {
  // A zombie (dead, not yet reaped by its new parent) answers kill(0) but holds nothing.
  try {
    if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
  } catch {
    // no procfs, or already gone
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Guards against a recycled PID: on Linux the command line must still name the recorded binary. */
function stillOurs(rec: PidRecord): boolean {
  if (process.platform !== 'linux') return true;
  try {
    const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
    return argv[0] === rec.binary || (argv[0] ?? '').endsWith('llama-server');
  } catch {
    return false;
  }
}

/**
 * One small JSON file per live llama-server under `<data_dir>/pids/`. Written synchronously at
 * spawn, so even a gateway killed a moment later leaves a record behind.
 */
export class PidRegistry implements PidRecorder {
  constructor(private readonly dir: string) {}

  add(pid: number, info: { model: string; binary: string }): void {
    mkdirSync(this.dir, { recursive: true });
    const rec: PidRecord = { pid, ...info, gatewayPid: process.pid, startedAt: new Date().toISOString() };
    writeFileSync(join(this.dir, `${pid}.json`), JSON.stringify(rec));
  }

  remove(pid: number): void {
    rmSync(join(this.dir, `${pid}.json`), { force: true });
  }

  private records(): PidRecord[] {
    let files: string[];
    try {
      files = readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const out: PidRecord[] = [];
    for (const f of files) {
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as PidRecord);
      } catch {
        rmSync(join(this.dir, f), { force: true });
      }
    }
    return out;
  }

  /**
   * Stops children left behind by a gateway that is gone (SIGTERM to the group, SIGKILL after
   * `graceMs`). Children of a gateway that is still running are left alone.
   */
  async reapOrphans(graceMs: number): Promise<ReapResult[]> {
    const reaped: ReapResult[] = [];
    await Promise.all(
      this.records().map(async (rec) => {
        if (rec.gatewayPid !== process.pid && processAlive(rec.gatewayPid)) return;
        if (processAlive(rec.pid) && stillOurs(rec)) {
          signalGroup(rec.pid, 'SIGTERM');
          // Not our child any more (re-parented to init), so there is no exit event: poll, bounded.
          const deadline = Date.now() + graceMs;
          let delay = 10;
          while (processAlive(rec.pid) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, 200);
          }
          const graceful = !processAlive(rec.pid);
          if (!graceful) signalGroup(rec.pid, 'SIGKILL');
          reaped.push({ pid: rec.pid, model: rec.model, graceful });
        }
        this.remove(rec.pid);
      }),
    );
    return reaped;
  }
}
