import { totalmem } from 'node:os';
import { parseSize } from '../config/duration.js';
import { runCommand } from '../runner/command.js';

export interface BudgetSettings {
  memory_budget: number | string;
  memory_fraction: number;
}

/** Total VRAM in bytes as nvidia-smi reports it; 0 without NVIDIA GPUs or the tool. */
export async function nvidiaVram(): Promise<number> {
  try {
    const { stdout, exitCode } = await runCommand(
      'nvidia-smi',
      ['--query-gpu=memory.total', '--format=csv,noheader,nounits'],
      3000,
    );
    if (exitCode !== 0) return 0;
    // One line per GPU, in MiB.
    return stdout
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isFinite(n) && n > 0)
      .reduce((sum, mib) => sum + mib * 1024 * 1024, 0);
  } catch {
    return 0;
  }
}

/** The memory budget in bytes: explicit, or `auto` = memory_fraction × (RAM + VRAM). 0 = unlimited. */
export function resolveBudget(settings: BudgetSettings, machine: { ramBytes?: number; vramBytes: number }): number {
  if (settings.memory_budget === 'auto') {
    return Math.floor(settings.memory_fraction * ((machine.ramBytes ?? totalmem()) + machine.vramBytes));
  }
  return parseSize(settings.memory_budget);
}
