import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GATEWAY_ENV, NODE_FLAGS } from '../../src/memory-settings.js';
import { findLlamaServer } from '../../src/provision/llama-binary.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { median } from './stats.js';

/**
 * What each of bin/corral's runtime flags buys: Corral is started with all of them, with each one left
 * out, and with none, in turns (so machine noise spreads over all variants), and measured for start to
 * listening, gateway CPU per streamed request, and RSS after serving and then idling. For
 * docs/performance.md ("Runtime flags"). Run: `node dist/tests/bench/runtime-flags.js` (ROUNDS=5;
 * VARIANTS=all,v8-pool runs those whose names contain one of the words).
 */
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const REQUESTS = 30;
const IDLE_MS = Number(process.env.IDLE_MS ?? 10_000);
const cli = resolve(import.meta.dirname, '../../src/cli.js');

interface Variant {
  name: string;
  flags: string[];
  env: Record<string, string>;
}

const ALL_ENV: Record<string, string> = { ...GATEWAY_ENV };
const variants: Variant[] = [
  { name: 'all (bin/corral)', flags: [...NODE_FLAGS], env: ALL_ENV },
  ...NODE_FLAGS.map((f) => ({ name: `without ${f}`, flags: NODE_FLAGS.filter((g) => g !== f), env: ALL_ENV })),
  ...Object.keys(GATEWAY_ENV).map((k) => ({ name: `without ${k}`, flags: [...NODE_FLAGS], env: {} })),
  { name: 'none (node dist/src/cli.js)', flags: [], env: {} },
].filter((v) => !process.env.VARIANTS || process.env.VARIANTS.split(',').some((w) => v.name.includes(w)));

const statusKb = async (pid: number, field: string): Promise<number> => {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
};
/** utime + stime of a process, in ms (clock ticks of 10 ms). */
const cpuMs = async (pid: number): Promise<number> => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

async function start(
  v: Variant,
  dir: string,
  llama: string,
): Promise<{ child: ChildProcess; url: string; ms: number }> {
  const began = performance.now();
  const child = spawn(process.execPath, [...v.flags, cli, 'serve', '--port', '0'], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir, CORRAL_LLAMA_SERVER: llama, CORRAL_LOG_LEVEL: 'warn', ...v.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await new Promise<string>((ok, fail) => {
    let text = '';
    child.stderr!.on('data', (b: Buffer) => {
      text += b.toString();
      const m = /Corral is listening on (\S+)/.exec(text);
      if (m) ok(m[1]!);
    });
    child.once('exit', (code) => fail(new Error(`exited ${code}: ${text}`)));
  });
  return { child, url, ms: performance.now() - began };
}

async function measure(v: Variant, llama: string) {
  const dir = await mkdtemp(join(tmpdir(), 'corral-flags-'));
  await mkdir(join(dir, 'data', 'models'), { recursive: true });
  await writeTinyModel(join(dir, 'data', 'models', 'tiny.gguf'));
  await writeFile(join(dir, 'data', '.keep'), '');
  const { child, url, ms } = await start(v, dir, llama);
  const pid = child.pid!;
  try {
    const body = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 16 } };
    await fetch(`${url}/api/chat`, { method: 'POST', body: JSON.stringify({ ...body, stream: false }) });
    const cpu0 = await cpuMs(pid);
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`${url}/api/chat`, { method: 'POST', body: JSON.stringify(body) });
      await res.text();
    }
    const cpuPerRequest = ((await cpuMs(pid)) - cpu0) / REQUESTS;
    await new Promise((r) => setTimeout(r, IDLE_MS));
    return { startMs: ms, cpuPerRequest, rssMb: (await statusKb(pid, 'VmRSS')) / 1024 };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function main(): Promise<void> {
  const llama = (await findLlamaServer({}))?.path;
  if (!llama) throw new Error('no llama-server: run `corral provision` first');
  const results = new Map<string, { startMs: number; cpuPerRequest: number; rssMb: number }[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const v of round % 2 ? variants : [...variants].reverse()) {
      const r = await measure(v, llama);
      results.set(v.name, [...(results.get(v.name) ?? []), r]);
      process.stderr.write(`[round ${round}] ${v.name}: ${JSON.stringify(r)}\n`);
    }
  }
  const fmt = (xs: number[], d = 1) =>
    `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
  process.stdout.write(
    `| Node settings | idle RSS after ${REQUESTS} chats, MB | start to listening, ms | gateway CPU per chat, ms |\n`,
  );
  process.stdout.write('|---|---|---|---|\n');
  for (const [name, rs] of results) {
    const col = (k: 'startMs' | 'cpuPerRequest' | 'rssMb', d?: number) =>
      fmt(
        rs.map((r) => r[k]),
        d,
      );
    process.stdout.write(`| ${name} | ${col('rssMb')} | ${col('startMs', 0)} | ${col('cpuPerRequest')} |\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
