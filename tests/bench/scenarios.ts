import { chat, rps, type Endpoint } from './client.js';
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
  rpsMs: number;
}

export const FULL: Sizes = {
  latencyRuns: 30, longTokens: 300, longRuns: 3, coldRuns: 3, swapRuns: 4,
  concurrency: [{ streams: 1, tokens: 64 }, { streams: 8, tokens: 32 }, { streams: 64, tokens: 8 }, { streams: 200, tokens: 4 }],
  rpsMs: 2000,
};
export const QUICK: Sizes = {
  latencyRuns: 6, longTokens: 64, longRuns: 1, coldRuns: 1, swapRuns: 2,
  concurrency: [{ streams: 1, tokens: 16 }, { streams: 8, tokens: 8 }, { streams: 64, tokens: 4 }, { streams: 200, tokens: 2 }],
  rpsMs: 500,
};

/** Row name → value for one target column. */
export type Column = Record<string, number>;

/** TTFT (stream) and non-stream latency on a loaded model, run one at a time. */
export async function latency(ep: Endpoint, model: string, s: Sizes, col: Column): Promise<void> {
  await chat(ep, model, 4, true); // warm: loaded, prompt cached, connection open
  const ttft: number[] = [];
  const full: number[] = [];
  for (let i = 0; i < s.latencyRuns; i++) {
    const a = await chat(ep, model, 4, true);
    if (a.ok) ttft.push(a.ttftMs);
    const b = await chat(ep, model, 4, false);
    if (b.ok) full.push(b.totalMs);
  }
  col['ttft_p50_ms'] = median(ttft);
  col['ttft_p95_ms'] = percentile(ttft, 95);
  col['nonstream_p50_ms'] = median(full);
  col['nonstream_p95_ms'] = percentile(full, 95);
}

/** Tokens per second of one long stream, measured from the first token to the end. */
export async function throughput(ep: Endpoint, model: string, s: Sizes, col: Column): Promise<void> {
  const rates: number[] = [];
  for (let i = 0; i < s.longRuns; i++) {
    const o = await chat(ep, model, s.longTokens, true);
    if (o.ok && o.tokens > 1) rates.push(((o.tokens - 1) / o.genMs) * 1000);
  }
  col['stream_tok_s'] = median(rates);
}

/** N concurrent streams: aggregate tokens/s, p95 TTFT, errors; samples `rssPid` while they run. */
export async function concurrent(ep: Endpoint, model: string, s: Sizes, col: Column, rssPid?: number): Promise<void> {
  for (const { streams, tokens } of s.concurrency) {
    let peak = rssBytes(rssPid);
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(rssPid))), 50);
    const t0 = performance.now();
    const outcomes = await Promise.all(Array.from({ length: streams }, () => chat(ep, model, tokens, true)));
    const wall = performance.now() - t0;
    clearInterval(sampler);
    const ok = outcomes.filter((o) => o.ok);
    col[`c${streams}_tok_s`] = (ok.reduce((n, o) => n + o.tokens, 0) / wall) * 1000;
    col[`c${streams}_ttft_p95_ms`] = percentile(ok.map((o) => o.ttftMs), 95);
    col[`c${streams}_errors`] = streams - ok.length;
    if (streams === s.concurrency.at(-1)!.streams && rssPid !== undefined) col['rss_load_mb'] = peak / 2 ** 20;
    const failed = outcomes.find((o) => !o.ok);
    if (failed) process.stderr.write(`  ${ep.label} c${streams}: ${streams - ok.length} errors, e.g. ${failed.error}\n`);
  }
}

export async function listRps(col: Column, row: string, url: string, s: Sizes): Promise<void> {
  const r = await rps(url, 16, s.rpsMs);
  col[row] = r.rps;
}
