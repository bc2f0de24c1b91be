import { spawn } from 'node:child_process';
import { constants, setPriority } from 'node:os';
import type { Readable } from 'node:stream';
import { signalGroup } from '../runner/signal-group.js';

export interface QuantizeCommand {
  tool: string;
  input: string;
  output: string;
  /** llama.cpp's type name, e.g. Q8_0. */
  type: string;
  /** A prefix that kills the child when Corral dies however it dies (see runner/death-signal.ts). */
  launcher?: string[] | undefined;
  /** The child's whole environment (see runner/child-env.ts: none of Corral's secrets). */
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Tensors done out of all, as llama-quantize reports them (`[  3/ 291] blk.0.attn_k.weight …`). */
  onProgress(done: number, total: number): void;
  /** How long a cancelled child has between SIGTERM and SIGKILL. */
  killAfterMs?: number;
  /** Called once the child runs, and once it has exited (the pid records a later start reaps from). */
  onSpawn?(pid: number): void;
  onExit?(pid: number): void;
}

const PROGRESS = /^\[\s*(\d+)\/\s*(\d+)\]/;
/** The lines that say why llama-quantize gave up (it prints them among its usual output). */
const FAILURE = /error|failed|cannot|unable|invalid|no space/i;

/**
 * Runs llama-quantize as a child that is Corral's to stop: its own process group (a stop reaches
 * anything it forks), below-normal CPU priority (requests keep being answered on a busy machine),
 * killed when `signal` aborts and awaited until it has exited, so its output file is no longer
 * written when the caller removes it. Rejects with `signal.reason` when cancelled.
 */
export async function runLlamaQuantize(cmd: QuantizeCommand): Promise<void> {
  cmd.signal.throwIfAborted();
  const [file, ...args] = [...(cmd.launcher ?? []), cmd.tool, cmd.input, cmd.output, cmd.type];
  const child = spawn(file!, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: cmd.env });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('close', (code) => resolve({ code }));
    child.once('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, error });
    });
  });
  if (child.pid !== undefined) {
    cmd.onSpawn?.(child.pid);
    try {
      setPriority(child.pid, constants.priority.PRIORITY_BELOW_NORMAL);
    } catch {
      // Not permitted here: it runs at normal priority.
    }
  }
  const output: string[] = [];
  const onLine = (line: string): void => {
    const m = PROGRESS.exec(line);
    if (m) cmd.onProgress(Number(m[1]), Number(m[2]));
    output.push(line);
    if (output.length > 40) output.shift();
  };
  readLines(child.stdout, onLine);
  readLines(child.stderr, onLine);
  let killer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    const pid = child.pid;
    if (pid === undefined) return;
    signalGroup(pid, 'SIGTERM');
    killer = setTimeout(() => signalGroup(pid, 'SIGKILL'), cmd.killAfterMs ?? 2_000);
  };
  cmd.signal.addEventListener('abort', stop, { once: true });
  try {
    const { code, error } = await exited;
    if (cmd.signal.aborted) throw cmd.signal.reason;
    if (error) throw new Error(`llama-quantize could not be started (${cmd.tool}): ${error.message}`);
    if (code !== 0) throw new Error(`llama-quantize failed: ${failureLine(output) ?? `exit code ${code}`}`);
  } finally {
    cmd.signal.removeEventListener('abort', stop);
    // Once it has exited its pid may be reused: no late SIGKILL.
    clearTimeout(killer);
    if (child.pid !== undefined) cmd.onExit?.(child.pid);
  }
}

function readLines(stream: Readable | null, onLine: (line: string) => void): void {
  let partial = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line.trimEnd());
  });
  stream?.on('end', () => {
    if (partial) onLine(partial.trimEnd());
  });
}

/** The most specific reason in the output: llama.cpp's own, else the first line naming a failure, else the last. */
function failureLine(lines: string[]): string | undefined {
  for (const l of lines) {
    const reason = /failed to quantize: (.+)$/.exec(l)?.[1];
    if (reason) return reason;
  }
  const meaningful = lines.filter((l) => l.trim() !== '' && !PROGRESS.test(l));
  return meaningful.find((l) => FAILURE.test(l)) ?? meaningful.at(-1);
}
