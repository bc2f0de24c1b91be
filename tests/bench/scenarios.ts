import { chat, rps, type Endpoint } from './client.js';
import { untilQuiet } from './quiet.js';
import { rssBytes } from './processes.js';
import { median, percentile } from './stats.js';

/** Sizes of every row; BENCH_QUICK=1 shrinks them for development. */
export interface Sizes {
  latencyRuns: number;
  longTokens: number;
  longRuns: number;
  coldRuns: number;
  swapRuns: number;
  concurrency: { streams: number; tokens: number }[];
  /** Each concurrency row is run this many times per target; the table shows medians. */
  concurrencyRounds: number;
  rpsMs: number;
}

export const FULL: Sizes = {
  latencyRuns: 30,
  longTokens: 300,
  longRuns: 3,
  coldRuns: 9,
  swapRuns: 8,
  concurrency: [
    { streams: 1, tokens: 64 },
    { streams: 8, tokens: 32 },
    { streams: 64, tokens: 8 },
    { streams: 200, tokens: 4 },
  ],
  concurrencyRounds: 3,
  rpsMs: 2000,
};
export const QUICK: Sizes = {
  latencyRuns: 6,
  longTokens: 64,
  longRuns: 1,
  coldRuns: 1,
  swapRuns: 2,
  concurrency: [
    { streams: 1, tokens: 16 },
    { streams: 8, tokens: 8 },
    { streams: 64, tokens: 4 },
    { streams: 200, tokens: 2 },
  ],
  concurrencyRounds: 1,
  rpsMs: 500,
};

/** Row name → value for one target column. */
export type Column = Record<string, number>;

/** One target in a side-by-side measurement: where to send, which model, and the column to fill. */
export interface Subject {
  ep: Endpoint;
  model: string;
  col: Column;
}

/**
 * Every subject in turn, starting one later each round and reversing direction every other round, so
 * drift on a noisy machine lands on all targets alike and no target always follows the same one.
 * Before each turn the machine is let go quiet: llama.cpp's threads keep spinning for a while after
 * their last batch, and without this the target measured right after another llama-server process
 * (Corral's /api after the router, in a fixed order) paid for that process's tail every time.
 * `before` (unmeasured) runs ahead of that wait.
 */
export async function roundRobin<S>(
  subjects: S[],
  rounds: number,
  fn: (s: S) => Promise<void>,
  before?: (s: S) => Promise<unknown>,
): Promise<void> {
  const n = subjects.length;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      const k = r % 2 === 0 ? r + i : r + n - 1 - i;
      if (before) await before(subjects[k % n]!);
      await untilQuiet();
      await fn(subjects[k % n]!);
    }
  }
}

/**
 * An unmeasured one-token answer from a loaded-model target right before its turn. Targets that share
 * a llama-server (direct and the node proxy; Corral's two APIs) otherwise often start their turn on
 * the process that just ran, and one that follows another process starts cold: 64 streams of 8
 * tokens on one Corral gave 498 tok/s after a load on another llama-server against 567 after a load
 * on its own child (8 alternating rounds, medians; 8 streams of 32: 625 against 676). Without it the
 * rotation of five targets favours the node proxy and Corral's /v1 (after their twin in 2 of 3
 * rounds) over direct and the router (never).
 */
const warm = (x: Subject): Promise<unknown> => chat(x.ep, x.model, 1, false);

/** TTFT (stream) and non-stream latency on a loaded model, one request at a time, targets interleaved. */
export async function latency(subjects: Subject[], s: Sizes, prefix = ''): Promise<void> {
  const ttft = new Map<Subject, number[]>(subjects.map((x) => [x, []]));
  const full = new Map<Subject, number[]>(subjects.map((x) => [x, []]));
  for (const x of subjects) await chat(x.ep, x.model, 4, true); // warm: loaded, prompt cached, connection open
  await roundRobin(
    subjects,
    s.latencyRuns,
    async (x) => {
      const a = await chat(x.ep, x.model, 4, true);
      if (a.ok) ttft.get(x)!.push(a.ttftMs);
      const b = await chat(x.ep, x.model, 4, false);
      if (b.ok) full.get(x)!.push(b.totalMs);
    },
    warm,
  );
  for (const x of subjects) {
    x.col[`${prefix}ttft_p50_ms`] = median(ttft.get(x)!);
    x.col[`${prefix}ttft_p95_ms`] = percentile(ttft.get(x)!, 95);
    x.col[`${prefix}nonstream_p50_ms`] = median(full.get(x)!);
    x.col[`${prefix}nonstream_p95_ms`] = percentile(full.get(x)!, 95);
  }
}

/** Tokens per second of one long stream, measured from the first token to the end; targets interleaved. */
export async function throughput(subjects: Subject[], s: Sizes, prefix = ''): Promise<void> {
  const rates = new Map<Subject, number[]>(subjects.map((x) => [x, []]));
  await roundRobin(
    subjects,
    s.longRuns,
    async (x) => {
      const o = await chat(x.ep, x.model, s.longTokens, true);
      if (o.ok && o.tokens > 1) rates.get(x)!.push(((o.tokens - 1) / o.genMs) * 1000);
    },
    warm,
  );
  for (const x of subjects) x.col[`${prefix}stream_tok_s`] = median(rates.get(x)!);
}

/**
 * N concurrent streams: aggregate tokens/s, p95 TTFT, errors. Targets take turns (a row saturates the
 * machine, so targets cannot overlap) for `concurrencyRounds` rounds; medians of the rounds are kept,
 * errors are summed. `rssPid` is sampled while its target runs.
 */
export async function concurrent(subjects: (Subject & { rssPid?: number })[], s: Sizes): Promise<void> {
  for (const { streams, tokens } of s.concurrency) {
    const rates = new Map<Subject, number[]>(subjects.map((x) => [x, []]));
    const p95s = new Map<Subject, number[]>(subjects.map((x) => [x, []]));
    const errors = new Map<Subject, number>(subjects.map((x) => [x, 0]));
    await roundRobin(
      subjects,
      s.concurrencyRounds,
      async (x) => {
        const rssPid = x.rssPid;
        let peak = rssBytes(rssPid);
        const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(rssPid))), 50);
        const t0 = performance.now();
        const outcomes = await Promise.all(Array.from({ length: streams }, () => chat(x.ep, x.model, tokens, true)));
        const wall = performance.now() - t0;
        clearInterval(sampler);
        const ok = outcomes.filter((o) => o.ok);
        rates.get(x)!.push((ok.reduce((n, o) => n + o.tokens, 0) / wall) * 1000);
        p95s.get(x)!.push(
          percentile(
            ok.map((o) => o.ttftMs),
            95,
          ),
        );
        errors.set(x, errors.get(x)! + streams - ok.length);
        if (streams === s.concurrency.at(-1)!.streams && rssPid !== undefined)
          x.col.rss_load_mb = Math.max(x.col.rss_load_mb ?? 0, peak / 2 ** 20);
        const failed = outcomes.find((o) => !o.ok);
        if (failed)
          process.stderr.write(`  ${x.ep.label} c${streams}: ${streams - ok.length} errors, e.g. ${failed.error}\n`);
      },
      warm,
    );
    for (const x of subjects) {
      x.col[`c${streams}_tok_s`] = median(rates.get(x)!);
      x.col[`c${streams}_ttft_p95_ms`] = median(p95s.get(x)!);
      x.col[`c${streams}_errors`] = errors.get(x)!;
    }
  }
}

/** One list row of one target: `url` is polled and its requests per second land in `col[row]`. */
export interface ListRow {
  col: Column;
  row: string;
  url: string;
}

/** Turns per list row: each turn polls for rpsMs / LIST_TURNS, the row keeps the median. */
const LIST_TURNS = 5;

/**
 * Requests per second on cheap GETs, every row taking turns (roundRobin, as the other rows do): run
 * one after another, a row could land on a slow stretch of this machine alone (seen: Corral's
 * /api/tags at 0.58× its /v1/models, which costs the gateway the same 80–100 µs per request when the
 * two alternate). An unmeasured warm-up per row first: the first request of a route runs its JIT warm-up.
 */
export async function listRps(rows: ListRow[], s: Sizes): Promise<void> {
  for (const r of rows) await rps(r.url, 16, s.rpsMs / 4);
  const seen = new Map<ListRow, number[]>(rows.map((r) => [r, []]));
  await roundRobin(
    rows,
    LIST_TURNS,
    async (r) => void seen.get(r)!.push((await rps(r.url, 16, s.rpsMs / LIST_TURNS)).rps),
  );
  for (const r of rows) r.col[r.row] = median(seen.get(r)!);
}
