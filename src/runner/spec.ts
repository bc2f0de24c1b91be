import { resolve } from 'node:path';
import { parseDuration, parseSize } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { type RunnerModel, runnerArgs } from './args.js';
import { modelLogFile } from './log-file.js';
import type { RunnerSpec } from './runner.js';

/** What every runner of one gateway shares, besides the config. */
export interface RunnerSettings {
  binary: string;
  /** Working directory for the logs directory. */
  cwd: string;
  /** The gateway's environment; children inherit only the allowed part of it. */
  env: NodeJS.ProcessEnv;
  pids: RunnerSpec['pids'];
  launcher: string[] | undefined;
  /** The -ngl a model gets when it sets none (undefined on a CPU build). */
  gpuLayers: string | undefined;
  socketDir: RunnerSpec['socketDir'];
  connect: RunnerSpec['connect'];
}

/** A model's runner under the current config: argv, log file and its limit, timeouts. */
export function runnerSpec(
  model: RunnerModel,
  ctxSize: number,
  parallel: number,
  config: Config,
  s: RunnerSettings,
  /** Load-time options a request asked for: Ollama's num_gpu. */
  load?: { numGpu?: number | undefined },
): RunnerSpec {
  const ls = config.llama_server;
  return {
    model: model.name,
    binary: s.binary,
    args: runnerArgs(model, {
      globalArgs: ls.args,
      ctxSize,
      parallel,
      gpuLayers: s.gpuLayers,
      requestGpuLayers: load?.numGpu,
    }),
    socketDir: s.socketDir,
    connect: s.connect,
    logFile: modelLogFile(resolve(s.cwd, config.logs_dir), model.name),
    logMaxBytes: parseSize(ls.log_max_size),
    startupTimeoutMs: parseDuration(ls.startup_timeout),
    stopTimeoutMs: parseDuration(ls.stop_timeout),
    inheritEnv: s.env,
    passEnv: ls.pass_env,
    pids: s.pids,
    launcher: s.launcher,
  };
}
