import type { Config } from './config/schema.js';
import { type BackendStatus, inspectBackend } from './provision/backend-status.js';
import type { Machine as Hardware } from './provision/detect.js';
import { ensureLlamaServer, type ResolvedBinary } from './provision/llama-binary.js';
import { deathSignalLauncher } from './runner/death-signal.js';
import type { Machine } from './scheduler/plans.js';

/** What the gateway learns about the machine once: the binary, what it computes on, the GPUs, the launcher. */
export interface MachineFacts extends Machine {
  binary: ResolvedBinary;
  backend: BackendStatus;
  hardware: Hardware;
  launcher: string[] | undefined;
}

export async function inspectMachine(config: Config, env: NodeJS.ProcessEnv): Promise<MachineFacts> {
  const [probed, launcher] = await Promise.all([probeBinary(config, env), deathSignalLauncher()]);
  return { ...probed, launcher };
}

/**
 * The configured llama-server (built if needed) and its backend. `cpuOnly`: it keeps everything in
 * RAM, which the kernel frees as an evicted child exits; GPU memory counts in the budget otherwise.
 */
async function probeBinary(
  config: Config,
  env: NodeJS.ProcessEnv,
  known?: Hardware,
): Promise<Omit<MachineFacts, 'launcher'>> {
  const binary = await ensureLlamaServer({
    configured: config.llama_server.binary,
    backend: config.llama_server.backend,
    env,
    progress: (l) => process.stderr.write(`[llama-server build] ${l}\n`),
  });
  const { status: backend, machine: hardware } = await inspectBackend(binary, env, known);
  const vramBytes = hardware.gpus.reduce((sum, g) => sum + (g.vramBytes ?? 0), 0);
  return { binary, backend, hardware, vramBytes, cpuOnly: backend.devices?.length === 0 };
}

/** A reload that names another binary provisions and probes it before anything else changes. */
export async function reprovision(
  machine: MachineFacts,
  before: Config,
  after: Config,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const ls = (c: Config) => [c.llama_server.binary, c.llama_server.backend].join('\0');
  if (ls(after) !== ls(before)) Object.assign(machine, await probeBinary(after, env, machine.hardware));
}
