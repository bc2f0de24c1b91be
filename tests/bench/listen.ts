import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CORRAL, startProcess, type Proc } from './processes.js';
import { roundRobin, type Column } from './scenarios.js';
import { median } from './stats.js';

/**
 * Start to listening: from spawning the program to its /health answering 200, with nothing loaded.
 * Corral (`corral serve` run as users run it) against llama-server's router mode, the other process
 * that lists models and waits for requests; in turns, so drift lands on both. `listen_spread_ms` is
 * the range (slowest minus fastest) of the runs behind each median.
 */
export async function startToListening(
  bin: string,
  modelsDir: string,
  work: string,
  cols: Record<string, Column>,
  runs: number,
  which: Set<string>,
): Promise<void> {
  const config = join(work, 'listen.yaml');
  await writeFile(
    config,
    stringify({
      llama_server: { binary: bin },
      models_dirs: [modelsDir],
      ollama_store: 'off',
      data_dir: join(work, 'listen-data'),
    }),
  );
  const all: { col: string; target: string; start(): Promise<Proc> }[] = [
    {
      col: 'router',
      target: 'router',
      start: () =>
        startProcess(
          bin,
          (port) => ['--models-dir', modelsDir, '--no-webui', '--host', '127.0.0.1', '--port', String(port)],
          '/health',
        ),
    },
    {
      col: 'corral_ollama',
      target: 'corral',
      start: () =>
        startProcess(
          CORRAL,
          (port) => ['serve', '--config', config, '--host', '127.0.0.1', '--port', String(port)],
          '/health',
        ),
    },
  ];
  const targets = all.filter((t) => which.has(t.target));
  const times = new Map(targets.map((t) => [t, [] as number[]]));
  await roundRobin(targets, runs, async (t) => {
    const p = await t.start();
    times.get(t)!.push(p.readyMs);
    await p.stop();
  });
  for (const t of targets) {
    const ms = times.get(t)!;
    cols[t.col] ??= {};
    cols[t.col]!.listen_ms = median(ms);
    cols[t.col]!.listen_spread_ms = Math.max(...ms) - Math.min(...ms);
  }
}
