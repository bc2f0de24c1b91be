import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { inspectBackend } from '../../src/provision/backend-status.js';
import { GPU_BACKENDS } from '../../src/provision/detect.js';
import { findLlamaServer } from '../../src/provision/llama-binary.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { chat, type Endpoint } from './client.js';
import { startCorralServe, rssBytes, startProcess, type Proc } from './processes.js';
import {
  concurrent,
  FULL,
  latency,
  listRps,
  QUICK,
  roundRobin,
  throughput,
  type Column,
  type ListRow,
  type Sizes,
  type Subject,
} from './scenarios.js';
import { median, now } from './stats.js';
import { startToListening } from './listen.js';
import { printTable } from './table.js';
import { printTransport, transportRows } from './transport.js';
import { fleetRows, printFleet } from './fleet.js';

const quick = process.env.BENCH_QUICK === '1';
const sizes: Sizes = quick ? QUICK : FULL;
/** Same llama-server settings for every target: 8 slots of 512 tokens, 2 threads, fixed-length generations. */
const CTX_PER_SLOT = 512;
const SLOTS = 8;
const LLAMA_ARGS = ['-t', '2', '--ignore-eos'];

const t00 = now();
const log = (line: string): void =>
  void process.stderr.write(`[bench ${((now() - t00) / 1000).toFixed(1)}s] ${line}\n`);
/** BENCH_TARGETS=direct,router,corral,transport,fleet runs a subset while developing. */
const targets = new Set((process.env.BENCH_TARGETS ?? 'direct,router,corral,transport,fleet').split(','));

const directArgs =
  (model: string, extra: string[]) =>
  (port: number): string[] => [
    '-m',
    model,
    '--alias',
    'bench',
    '--no-webui',
    '--metrics',
    '-c',
    String(CTX_PER_SLOT * SLOTS),
    '-np',
    String(SLOTS),
    ...extra,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
  ];
const routerArgs =
  (dir: string) =>
  (port: number): string[] => [
    '--models-dir',
    dir,
    '--models-max',
    '1',
    '--no-webui',
    '--metrics',
    '-c',
    String(CTX_PER_SLOT * SLOTS),
    '-np',
    String(SLOTS),
    ...LLAMA_ARGS,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
  ];

/** How long the gateway is left without traffic before its idle RSS is read. */
const IDLE_MS = quick ? 2_000 : 20_000;

/** What llama-server prints once its model is loaded and it accepts connections. */
const READY_LINE = /listening on http/;

/** One target's cold start and swap, measured a turn at a time (see coldAndSwap). */
interface Starts {
  col: Column;
  /** ms from no process for the model to its first answer. */
  cold(): Promise<number>;
  /** Before the swap turns, not measured: the first model loaded. */
  prepareSwap(): Promise<void>;
  /** ms to the first answer from the other model, the previous one stopped. */
  swap(i: number): Promise<number>;
  close(): Promise<void>;
}

const other = (i: number): 'bench' | 'bench2' => (i % 2 === 0 ? 'bench2' : 'bench');

async function answer(ep: Endpoint, model: string, what: string, extra: object = {}): Promise<number> {
  const o = await chat(ep, model, 1, false, extra);
  if (!o.ok) throw new Error(`${ep.label} ${what} failed: ${o.error}`);
  return o.totalMs;
}

/**
 * Bare llama-server, started the tightest way a supervisor can: spawn, wait for its ready line, first
 * request. Its cold start (spawn to first answer) is the baseline the other targets' cold rows are
 * compared with; `ready` collects its spawn-to-ready times.
 */
function directStarts(bin: string, models: { a: string; b: string }, col: Column, ready: number[]): Starts {
  let current: Proc | undefined;
  const first = async (model: string): Promise<number> => {
    const t0 = now();
    current = await startProcess(bin, directArgs(model, LLAMA_ARGS), '/health', { readyLine: READY_LINE });
    await answer({ label: 'direct', base: current.base, api: 'openai' }, 'bench', 'first answer');
    return now() - t0;
  };
  return {
    col,
    async cold() {
      const ms = await first(models.a);
      ready.push(current!.readyMs);
      await current!.stop();
      return ms;
    },
    async prepareSwap() {
      current = await startProcess(bin, directArgs(models.a, LLAMA_ARGS), '/health');
    },
    async swap(i) {
      // Stop one process and start the other, as a supervisor would: the stop overlaps the start.
      const stopping = current!.stop();
      const ms = await first(other(i) === 'bench2' ? models.b : models.a);
      await stopping;
      return ms;
    },
    close: async () => current?.stop(),
  };
}

/** Router mode: a fresh router for each cold start (timed from its first request); one router, `--models-max 1`, for swaps. */
function routerStarts(bin: string, dir: string, col: Column): Starts {
  let swapper: Proc | undefined;
  const ep = (p: Proc): Endpoint => ({ label: 'router', base: p.base, api: 'openai' });
  return {
    col,
    async cold() {
      const p = await startProcess(bin, routerArgs(dir), '/health');
      try {
        return await answer(ep(p), 'bench', 'cold request');
      } finally {
        await p.stop();
      }
    },
    async prepareSwap() {
      swapper = await startProcess(bin, routerArgs(dir), '/health');
      await answer(ep(swapper), 'bench', 'first load');
    },
    swap: (i) => answer(ep(swapper!), other(i), 'swap'),
    close: async () => swapper?.stop(),
  };
}

/**
 * Corral through one API. A cold start is an unload (keep_alive 0) and a request. The two models are a
 * swap group, so a request for the other one unloads the loaded one inside the timed request, as the
 * router's `--models-max 1` does and as direct stops one process and starts the other. Both APIs
 * share one Corral, so `loaded` (which model it has) is shared too.
 */
function corralStarts(p: Proc, api: 'ollama' | 'openai', col: Column, loaded: { model: 'bench' | 'bench2' }): Starts {
  const ep: Endpoint = { label: api === 'ollama' ? 'corral_ollama' : 'corral_v1', base: p.base, api };
  return {
    col,
    async cold() {
      await chat({ ...ep, api: 'ollama' }, 'bench', 0, false, { messages: [], keep_alive: 0 });
      return answer(ep, 'bench', 'cold request');
    },
    async prepareSwap() {
      await answer(ep, loaded.model, 'first load');
    },
    async swap() {
      loaded.model = loaded.model === 'bench' ? 'bench2' : 'bench';
      return answer(ep, loaded.model, 'swap');
    },
    close: async () => {},
  };
}

/**
 * Cold start and swap rows, every target taking turns (roundRobin, as the loaded-model rows do): run
 * target after target, drift on this machine can move one target's cold row by tens of milliseconds,
 * while in turns it lands on every target alike.
 */
async function coldAndSwap(
  bin: string,
  dir: string,
  models: { a: string; b: string },
  corral: Proc | undefined,
  cols: Record<string, Column>,
): Promise<void> {
  const ready: number[] = [];
  const all: [string, Starts][] = [];
  if (targets.has('direct')) all.push(['direct', directStarts(bin, models, (cols.direct = {}), ready)]);
  if (targets.has('router')) all.push(['router', routerStarts(bin, dir, (cols.router = {}))]);
  const loaded: { model: 'bench' | 'bench2' } = { model: 'bench' };
  if (corral)
    all.push(
      ['corral_ollama', corralStarts(corral, 'ollama', (cols.corral_ollama = {}), loaded)],
      ['corral_v1', corralStarts(corral, 'openai', (cols.corral_v1 = {}), loaded)],
    );
  const cold = new Map<Starts, number[]>(all.map(([, t]) => [t, []]));
  const swaps = new Map<Starts, number[]>(all.map(([, t]) => [t, []]));
  const turns = new Map<Starts, number>();
  log(`cold start, targets interleaved (${all.map(([n]) => n).join(', ')})`);
  await roundRobin(
    all.map(([, t]) => t),
    sizes.coldRuns,
    async (t) => void cold.get(t)!.push(await t.cold()),
  );
  log('swap between two models, targets interleaved');
  try {
    for (const [, t] of all) await t.prepareSwap();
    await roundRobin(
      all.map(([, t]) => t),
      sizes.swapRuns,
      async (t) => {
        const i = turns.get(t) ?? 0;
        turns.set(t, i + 1);
        swaps.get(t)!.push(await t.swap(i));
      },
    );
  } finally {
    for (const [, t] of all) await t.close();
  }
  const direct = all.find(([n]) => n === 'direct')?.[1];
  const baseline = { ready: median(ready), cold: direct ? median(cold.get(direct)!) : NaN };
  if (cols.direct) cols.direct.child_ready_ms = baseline.ready;
  for (const [, t] of all) {
    const c = cold.get(t)!;
    t.col.cold_total_ms = median(c);
    t.col.cold_minus_ready_ms = median(c) - baseline.ready;
    t.col.cold_overhead_ms = median(c) - baseline.cold;
    t.col.swap_ms = median(swaps.get(t)!);
  }
}

/** Corral with both benchmark models, plus `bench_t1` (model `a` on one thread) for the spare-core rows. */
async function startCorral(bin: string, work: string, models: { a: string; b: string }): Promise<Proc> {
  const configFile = join(work, 'corral.yaml');
  await writeFile(
    configFile,
    stringify({
      llama_server: { binary: bin, args: LLAMA_ARGS, stop_timeout: '5s' },
      models_dirs: [],
      defaults: { ctx_size: CTX_PER_SLOT, parallel: SLOTS, queue_size: 256, keep_alive: '10m' },
      models: {
        bench: { path: models.a },
        bench2: { path: models.b },
        bench_t1: { path: models.a, args: ['-t', '1'] },
      },
      // Loading one unloads the other: what the swap rows measure.
      scheduler: { groups: { swap: ['bench', 'bench2'] } },
    }),
  );
  return startCorralServe(configFile, '/health', 'info');
}

/**
 * A model loaded and no traffic. Waiting is the measurement here: V8's memory reducer gives back the
 * heap grown by the earlier rows only after about 10 s without allocation (seen: 84 MB at 0.5 s, 76 MB
 * from 15 s on), so both moments are reported.
 */
async function corralIdleRss(p: Proc, col: Column): Promise<void> {
  await chat({ label: 'corral', base: p.base, api: 'ollama' }, 'bench', 1, false);
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await pause(500);
  col.rss_recent_mb = rssBytes(p.child.pid) / 2 ** 20;
  await pause(IDLE_MS - 500);
  col.rss_idle_mb = rssBytes(p.child.pid) / 2 ** 20;
}

/**
 * Loaded-model rows with every target up at once and measured in turn (see scenarios.ts), so the
 * ratios compare targets under the same conditions. `proxy` is the bare Node proxy in front of the
 * direct llama-server: the floor any gateway process pays for its hop.
 */
async function steady(
  bin: string,
  dir: string,
  models: { a: string; b: string },
  corralProc: Proc | undefined,
  cols: Record<string, Column>,
): Promise<void> {
  const procs: Proc[] = [];
  const subjects: (Subject & { rssPid?: number })[] = [];
  const lists: ListRow[] = [];
  try {
    if (targets.has('direct')) {
      const d = await startProcess(bin, directArgs(models.a, LLAMA_ARGS), '/health');
      const proxyJs = resolve(import.meta.dirname, 'bare-proxy.js');
      const px = await startProcess(process.execPath, (port) => [proxyJs, d.base, String(port)], '/health');
      procs.push(d, px);
      cols.proxy = {};
      subjects.push(
        { ep: { label: 'direct', base: d.base, api: 'openai' }, model: 'bench', col: cols.direct! },
        { ep: { label: 'proxy', base: px.base, api: 'openai' }, model: 'bench', col: cols.proxy },
      );
      lists.push(
        { col: cols.direct!, row: 'tags_rps', url: `${d.base}/v1/models` },
        { col: cols.direct!, row: 'ps_rps', url: `${d.base}/slots` },
      );
    }
    if (targets.has('router')) {
      const r = await startProcess(bin, routerArgs(dir), '/health');
      procs.push(r);
      cols.router!.rss_idle_mb = rssBytes(r.child.pid) / 2 ** 20;
      subjects.push({
        ep: { label: 'router', base: r.base, api: 'openai' },
        model: 'bench',
        col: cols.router!,
        rssPid: r.child.pid,
      });
      lists.push(
        { col: cols.router!, row: 'tags_rps', url: `${r.base}/models` },
        { col: cols.router!, row: 'ps_rps', url: `${r.base}/v1/models` },
      );
    }
    if (corralProc) {
      const pid = corralProc.child.pid;
      subjects.push({
        ep: { label: 'corral_ollama', base: corralProc.base, api: 'ollama' },
        model: 'bench',
        col: cols.corral_ollama!,
        rssPid: pid,
      });
      subjects.push({
        ep: { label: 'corral_v1', base: corralProc.base, api: 'openai' },
        model: 'bench',
        col: cols.corral_v1!,
        rssPid: pid,
      });
      lists.push(
        { col: cols.corral_ollama!, row: 'tags_rps', url: `${corralProc.base}/api/tags` },
        { col: cols.corral_ollama!, row: 'ps_rps', url: `${corralProc.base}/api/ps` },
        { col: cols.corral_v1!, row: 'tags_rps', url: `${corralProc.base}/v1/models` },
      );
    }
    log(`loaded model, targets interleaved (${subjects.map((x) => x.ep.label).join(', ')}): latency`);
    await latency(subjects, sizes);
    log('throughput');
    await throughput(subjects, sizes);
    log('concurrency');
    await concurrent(subjects, sizes);
    log('list rps, rows interleaved');
    await listRps(lists, sizes);
  } finally {
    for (const p of procs) await p.stop();
  }
  if (targets.has('direct') && corralProc) await spareCore(bin, models, corralProc, cols);
}

/**
 * The same loaded-model rows with llama-server on one thread, leaving a core free: on 2 cores a
 * 2-thread llama-server has to give up CPU to any gateway process, so this isolates the gateway's own cost.
 */
async function spareCore(
  bin: string,
  models: { a: string; b: string },
  corralProc: Proc,
  cols: Record<string, Column>,
): Promise<void> {
  log('spare core: llama-server -t 1, direct vs Corral, interleaved');
  const d = await startProcess(bin, directArgs(models.a, [...LLAMA_ARGS, '-t', '1']), '/health');
  try {
    const subjects: Subject[] = [
      { ep: { label: 'direct', base: d.base, api: 'openai' }, model: 'bench', col: cols.direct! },
      {
        ep: { label: 'corral_ollama', base: corralProc.base, api: 'ollama' },
        model: 'bench_t1',
        col: cols.corral_ollama!,
      },
      { ep: { label: 'corral_v1', base: corralProc.base, api: 'openai' }, model: 'bench_t1', col: cols.corral_v1! },
    ];
    await latency(subjects, sizes, 't1_');
    await throughput(subjects, sizes, 't1_');
  } finally {
    await d.stop();
  }
}

/**
 * One throwaway load and answer per model before anything is measured: the first target measured
 * would otherwise pay alone for reading the freshly written files (seen: 2.2 s instead of 0.15 s).
 */
async function warmUp(bin: string, models: { a: string; b: string }): Promise<void> {
  log('warm-up: one load and one answer per model (not measured)');
  for (const model of [models.a, models.b]) {
    const p = await startProcess(bin, directArgs(model, LLAMA_ARGS), '/health');
    await chat({ label: 'warm-up', base: p.base, api: 'openai' }, 'bench', 4, false);
    await p.stop();
  }
}

/**
 * The llama-server to measure: the usual one, or with `--gpu` a provisioned GPU build (the rows are
 * the same; the table's header says which backend ran them).
 */
async function pickBinary(): Promise<{ bin: string; backend: string }> {
  if (!process.argv.includes('--gpu')) {
    const found = await findLlamaServer({});
    if (!found) throw new Error('no llama-server: run `corral provision` first');
    return { bin: found.path, backend: (await inspectBackend(found)).status.description };
  }
  const tried: string[] = [];
  for (const backend of GPU_BACKENDS) {
    const found = await findLlamaServer({ backend, env: { ...process.env, CORRAL_LLAMA_SERVER: '', PATH: '' } });
    if (!found) continue;
    const { status } = await inspectBackend(found);
    if (status.name !== 'cpu' && status.name !== 'unknown') return { bin: found.path, backend: status.description };
    tried.push(
      `${found.path} runs on ${status.description}${status.warnings.length ? ` (${status.warnings[0]})` : ''}`,
    );
  }
  throw new Error(
    `--gpu: no GPU build to run${tried.length ? `: ${tried.join('; ')}` : ''}; \`corral doctor\` says what this machine has and \`corral provision --backend NAME\` makes one`,
  );
}

async function main(): Promise<void> {
  const { bin, backend } = await pickBinary();
  log(`llama-server ${bin} on ${backend}`);
  const work = await mkdtemp(join(tmpdir(), 'corral-bench-'));
  const dir = join(work, 'models');
  await mkdir(dir);
  const models = { a: join(dir, 'bench.gguf'), b: join(dir, 'bench2.gguf') };
  log(`${quick ? 'QUICK mode; ' : ''}writing two ~85 MB random-weight models (E=512, 8 layers) to ${dir}`);
  await Promise.all([
    writeTinyModel(models.a, { name: 'bench', seed: 11, embd: 512, layers: 8 }),
    writeTinyModel(models.b, { name: 'bench2', seed: 12, embd: 512, layers: 8 }),
  ]);
  const cols: Record<string, Column> = {};
  let transport: Record<string, Column> | undefined;
  let fleet: Record<string, Column> | undefined;
  const started = now();
  try {
    await warmUp(bin, models);
    if (targets.has('transport')) {
      log('transport: Corral with its child on TCP vs on a Unix socket, beside a raw TCP forwarder, interleaved');
      transport = await transportRows(bin, models.a, work, LLAMA_ARGS, directArgs(models.a, LLAMA_ARGS), sizes, quick);
    }
    if (targets.has('fleet')) {
      log('fleet: a request forwarded from node A to node B against one sent to B itself, interleaved');
      fleet = await fleetRows(bin, models.a, work, LLAMA_ARGS, sizes);
    }
    const corralProc = targets.has('corral') ? await startCorral(bin, work, models) : undefined;
    try {
      await coldAndSwap(bin, dir, models, corralProc, cols);
      if (corralProc) await corralIdleRss(corralProc, cols.corral_ollama!);
      await steady(bin, dir, models, corralProc, cols);
    } finally {
      await corralProc?.stop();
    }
    log('start to listening, nothing loaded, targets interleaved');
    await startToListening(bin, dir, work, cols, sizes.coldRuns, targets);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  printTable(cols, backend);
  if (transport) printTransport(transport);
  if (fleet) printFleet(fleet);
  const out = resolve(import.meta.dirname, '../../../tests/bench/results.json');
  await writeFile(
    out,
    `${JSON.stringify({ at: new Date().toISOString(), quick, durationS: Math.round((now() - started) / 1000), backend, sizes, results: cols, transport, fleet }, null, 2)}\n`,
  );
  log(`results written to ${out}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
