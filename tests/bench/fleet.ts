import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TestPostgres } from '../setup/postgres-server.js';
import { chat, type Endpoint } from './client.js';
import { startCorralServe, type Proc } from './processes.js';
import { roundRobin, type Column, type Sizes } from './scenarios.js';
import { median, percentile } from './stats.js';

const SECRET = 'bench-fleet-secret-of-32-characters-or-more';

/** A Corral node of a bench fleet: `models` is what its catalogue holds. */
async function startNode(
  bin: string,
  work: string,
  id: string,
  database: string,
  models: Record<string, { path: string }>,
  llamaArgs: string[],
): Promise<Proc> {
  const configFile = join(work, `fleet-${id}.yaml`);
  await writeFile(
    configFile,
    stringify({
      llama_server: { binary: bin, args: llamaArgs, stop_timeout: '5s' },
      models_dirs: [],
      ollama_store: 'off',
      data_dir: join(work, `data-${id}`),
      logs_dir: join(work, `logs-${id}`),
      store: { url: database },
      defaults: { ctx_size: 512, parallel: 8, queue_size: 256, keep_alive: '10m' },
      models,
      fleet: { enabled: true, node_id: id, secret: SECRET },
    }),
  );
  return startCorralServe(configFile, '/ready');
}

/** Until the entry node lists the serving node's model: the fleet has heard from both. */
async function untilListed(entry: string, model: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const tags = (await (await fetch(`${entry}/api/tags`)).json()) as { models: { name: string }[] };
    if (tags.models.some((m) => m.name === model)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${entry} never listed ${model}`);
}

interface Target {
  ep: Endpoint;
  col: Column;
  ttft: number[];
  tps: number[];
}

/**
 * A forwarded request against a local one, on the same llama-server: node B serves the model, and the
 * client asks B itself (local) or node A, which forwards to B. Rows: TTFT of a 4-token stream, and the
 * throughput of one long stream (generated tokens over the time from first token to end). Turns
 * alternate; medians with the 25th and 75th percentiles.
 */
export async function fleetRows(
  bin: string,
  model: string,
  work: string,
  llamaArgs: string[],
  sizes: Sizes,
): Promise<Record<string, Column>> {
  const postgres = await TestPostgres.create();
  const procs: Proc[] = [];
  const cols: Record<string, Column> = { local: {}, forwarded: {} };
  try {
    const database = await postgres.createDatabase('bench');
    const b = await startNode(bin, work, 'b', database, { bench: { path: model } }, llamaArgs);
    procs.push(b);
    const a = await startNode(bin, work, 'a', database, {}, llamaArgs);
    procs.push(a);
    await untilListed(a.base, 'bench:latest');
    const targets: Target[] = [
      { ep: { label: 'local', base: b.base, api: 'ollama' }, col: cols.local!, ttft: [], tps: [] },
      { ep: { label: 'forwarded', base: a.base, api: 'ollama' }, col: cols.forwarded!, ttft: [], tps: [] },
    ];
    for (const x of targets) await chat(x.ep, 'bench', 4, true);
    const long = sizes.longTokens;
    await roundRobin(targets, sizes.latencyRuns, async (x) => {
      const short = await chat(x.ep, 'bench', 4, true);
      if (short.ok) x.ttft.push(short.ttftMs);
      const o = await chat(x.ep, 'bench', long, true);
      if (o.ok && o.genMs > 0) x.tps.push(((o.tokens - 1) * 1000) / o.genMs);
    });
    for (const x of targets) {
      x.col.ttft_p50_ms = median(x.ttft);
      x.col.ttft_p25_ms = percentile(x.ttft, 25);
      x.col.ttft_p75_ms = percentile(x.ttft, 75);
      x.col.stream_tok_s = median(x.tps);
      x.col.stream_tok_s_p25 = percentile(x.tps, 25);
      x.col.stream_tok_s_p75 = percentile(x.tps, 75);
      x.col.turns = x.ttft.length;
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await postgres.destroy();
  }
  return cols;
}

/** The fleet rows as a table of their own: local against forwarded, and their ratio. */
export function printFleet(cols: Record<string, Column>): void {
  const l = cols.local;
  const f = cols.forwarded;
  if (!l || !f) return;
  const n = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(v >= 100 ? 0 : 2));
  const span = (c: Column, key: string): string => `${n(c[key])} (${n(c[`${key}_p25`])}–${n(c[`${key}_p75`])})`;
  const ttft = (c: Column): string => `${n(c.ttft_p50_ms)} (${n(c.ttft_p25_ms)}–${n(c.ttft_p75_ms)})`;
  const ratio = (a?: number, b?: number): string => (a && b ? `${(a / b).toFixed(2)}x` : '-');
  const lines = [
    `| fleet (${l.turns} turns each; median, p25–p75) | local on node B | forwarded A → B | forwarded ÷ local |`,
    '|---|---:|---:|---:|',
    `| TTFT of a 4-token stream (ms) | ${ttft(l)} | ${ttft(f)} | ${ratio(f.ttft_p50_ms, l.ttft_p50_ms)} |`,
    `| one stream's throughput (tokens/s) | ${span(l, 'stream_tok_s')} | ${span(f, 'stream_tok_s')} | ` +
      `${ratio(f.stream_tok_s, l.stream_tok_s)} |`,
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
}
