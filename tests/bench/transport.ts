import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { chat, type Endpoint } from './client.js';
import { startCorralServe, startProcess, type Proc } from './processes.js';
import { median, percentile } from './stats.js';
import { roundRobin, type Column, type Sizes } from './scenarios.js';

/** Nanoseconds a process has spent on a CPU so far, over all its threads (/proc/<pid>/task/x/schedstat). */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended while we read
    }
  }
  return total;
}

interface Target {
  ep: Endpoint;
  pid: number;
  col: Column;
}

/** Concurrent streams per batch of the CPU rows, requests per stream, tokens of a long request. */
interface Load {
  streams: number;
  requests: number;
  tokens: number;
}
const CPU_LOAD: Record<'full' | 'quick', Load> = {
  full: { streams: 8, requests: 3, tokens: 132 },
  quick: { streams: 4, requests: 2, tokens: 36 },
};

async function startCorral(
  bin: string,
  work: string,
  model: string,
  llamaArgs: string[],
  transport: 'unix' | 'tcp',
): Promise<Proc> {
  const configFile = join(work, `corral-${transport}.yaml`);
  await writeFile(
    configFile,
    stringify({
      llama_server: { binary: bin, args: llamaArgs, stop_timeout: '5s', transport },
      models_dirs: [],
      data_dir: join(work, `data-${transport}`),
      logs_dir: join(work, `logs-${transport}`),
      store: { path: join(work, `data-${transport}`, 'corral.db') },
      defaults: { ctx_size: 512, parallel: 8, queue_size: 256, keep_alive: '10m' },
      models: { bench: { path: model } },
    }),
  );
  return startCorralServe(configFile);
}

/**
 * Corral with its child on a Unix socket against Corral with its child on loopback TCP (same model,
 * same settings, each its own child), beside a raw TCP forwarder in front of a direct llama-server:
 * TTFT of a streamed 4-token answer, and gateway CPU (all the gateway's threads, from /proc) per streamed
 * token and per short stream, under 8 concurrent streams. Targets take turns (roundRobin), medians of
 * the turns.
 */
export async function transportRows(
  bin: string,
  model: string,
  work: string,
  llamaArgs: string[],
  directArgs: (port: number) => string[],
  sizes: Sizes,
  quick: boolean,
): Promise<Record<string, Column>> {
  const procs: Proc[] = [];
  const cols: Record<string, Column> = { raw_proxy: {}, corral_tcp: {}, corral_unix: {} };
  try {
    const direct = await startProcess(bin, directArgs, '/health');
    procs.push(direct);
    const rawJs = resolve(import.meta.dirname, 'raw-proxy.js');
    const directPort = new URL(direct.base).port;
    const raw = await startProcess(process.execPath, (port) => [rawJs, directPort, String(port)], '/health');
    procs.push(raw);
    const tcp = await startCorral(bin, work, model, llamaArgs, 'tcp');
    procs.push(tcp);
    const unix = await startCorral(bin, work, model, llamaArgs, 'unix');
    procs.push(unix);
    const targets: Target[] = [
      { ep: { label: 'raw_proxy', base: raw.base, api: 'openai' }, pid: raw.child.pid!, col: cols.raw_proxy! },
      { ep: { label: 'corral_tcp', base: tcp.base, api: 'openai' }, pid: tcp.child.pid!, col: cols.corral_tcp! },
      { ep: { label: 'corral_unix', base: unix.base, api: 'openai' }, pid: unix.child.pid!, col: cols.corral_unix! },
    ];
    for (const x of targets) await chat(x.ep, 'bench', 4, true);
    await ttft(targets, sizes.latencyRuns);
    await cpuPerToken(targets, quick ? CPU_LOAD.quick : CPU_LOAD.full, quick ? 2 : 6);
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
  return cols;
}

async function ttft(targets: Target[], runs: number): Promise<void> {
  const seen = new Map<Target, number[]>(targets.map((x) => [x, []]));
  await roundRobin(
    targets,
    runs,
    async (x) => {
      const o = await chat(x.ep, 'bench', 4, true);
      if (o.ok) seen.get(x)!.push(o.ttftMs);
    },
    (x) => chat(x.ep, 'bench', 1, false),
  );
  for (const x of targets) {
    x.col.ttft_p50_ms = median(seen.get(x)!);
    x.col.ttft_p95_ms = percentile(seen.get(x)!, 95);
  }
}

/** One batch of concurrent streams: the gateway's CPU per request, and generated tokens per request. */
async function batch(
  x: Target,
  load: Load,
  tokens: number,
): Promise<{ cpuUs: number; tokens: number; errors: string[] }> {
  const before = cpuNs(x.pid);
  let generated = 0;
  let ok = 0;
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: load.streams }, async () => {
      for (let i = 0; i < load.requests; i++) {
        const o = await chat(x.ep, 'bench', tokens, true);
        if (o.ok) {
          generated += o.tokens;
          ok++;
        } else errors.push(o.error ?? 'failed');
      }
    }),
  );
  return { cpuUs: (cpuNs(x.pid) - before) / 1000 / ok, tokens: generated / ok, errors };
}

/**
 * Gateway CPU per streamed token as the difference between long and short streams per request, so the
 * per-request part (connections, request parsing, routing) cancels out; the short streams' CPU per
 * request is reported too. The raw forwarder passes on llama-server's keep-alive announcement and then
 * its close, so now and then a client loses the race to reuse that connection ("other side closed"):
 * such streams are reported and left out of the averages.
 */
async function cpuPerToken(targets: Target[], load: Load, rounds: number): Promise<void> {
  const perToken = new Map<Target, number[]>(targets.map((x) => [x, []]));
  const perRequest = new Map<Target, number[]>(targets.map((x) => [x, []]));
  const errors = new Map<Target, string[]>(targets.map((x) => [x, []]));
  await roundRobin(
    targets,
    rounds,
    async (x) => {
      const short = await batch(x, load, 4);
      const long = await batch(x, load, load.tokens);
      errors.get(x)!.push(...short.errors, ...long.errors);
      perRequest.get(x)!.push(short.cpuUs);
      perToken.get(x)!.push((long.cpuUs - short.cpuUs) / (long.tokens - short.tokens));
    },
    (x) => chat(x.ep, 'bench', 1, false),
  );
  for (const [x, e] of errors)
    if (e.length) process.stderr.write(`  ${x.ep.label}: ${e.length} failed streams, e.g. ${e[0]}\n`);
  for (const x of targets) {
    const v = perToken.get(x)!;
    x.col.cpu_us_per_token = median(v);
    x.col.cpu_us_per_token_min = Math.min(...v);
    x.col.cpu_us_per_token_max = Math.max(...v);
    x.col.cpu_us_per_request = median(perRequest.get(x)!);
  }
}

/** The transport rows as a table of their own: TCP against Unix socket, and both against the raw forwarder. */
export function printTransport(cols: Record<string, Column>): void {
  const t = cols.corral_tcp;
  const u = cols.corral_unix;
  const r = cols.raw_proxy;
  if (!t || !u || !r) return;
  const f = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(v >= 100 ? 0 : 2));
  const rows: [string, string][] = [
    ['ttft_p50_ms', 'TTFT p50 (ms)'],
    ['ttft_p95_ms', 'TTFT p95 (ms)'],
    ['cpu_us_per_token', 'gateway CPU per streamed token (µs)'],
    ['cpu_us_per_token_min', '  lowest turn (µs)'],
    ['cpu_us_per_token_max', '  highest turn (µs)'],
    ['cpu_us_per_request', 'gateway CPU per 4-token stream (µs)'],
  ];
  const lines = [
    '| | raw TCP forwarder | corral /v1, child on TCP | corral /v1, child on Unix socket | unix÷tcp | unix÷raw |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const [key, label] of rows) {
    const ratio = (a?: number, b?: number): string => (a && b ? `${(a / b).toFixed(2)}x` : '-');
    lines.push(
      `| ${label} | ${f(r[key])} | ${f(t[key])} | ${f(u[key])} | ${ratio(u[key], t[key])} | ${ratio(u[key], r[key])} |`,
    );
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}
