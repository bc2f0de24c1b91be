import { appendFile, mkdtemp, readFile, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { followFile } from '../../src/runner/follow-file.js';
import {
  lastLines,
  lineCutter,
  modelLogFile,
  openChildLog,
  previousLog,
  resumeOffset,
  tailOffset,
} from '../../src/runner/log-file.js';
import { Runner } from '../../src/runner/runner.js';
import { post, startGateway } from '../helpers/gateway.js';
import { closeSync } from 'node:fs';
import { once } from 'node:events';
import { runnerPlumbing } from '../helpers/runner.js';

let dir: string;
const fixtures = inject('fixtures');
// These runners listen on loopback TCP (the fallback transport), whose ready line names an http:// address.
const plumbing = runnerPlumbing({ tcp: true });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'corral-logfile-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** Collects a follower's lines; `until(n)` resolves once n lines have arrived. */
function collector() {
  const lines: { line: string; end: number }[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  return {
    lines,
    onLine(line: string, end: number) {
      lines.push({ line, end });
      if (waiter && lines.length >= waiter.n) waiter.resolve();
    },
    until(n: number): Promise<void> {
      if (lines.length >= n) return Promise.resolve();
      return new Promise((resolve) => (waiter = { n, resolve }));
    },
  };
}

describe('log lines', () => {
  it('cuts bytes into lines with resumable offsets, holding a partial line and a split character', () => {
    const out: [string, number][] = [];
    const cut = lineCutter((line, end) => out.push([line, end]));
    const bytes = Buffer.from('one\r\ntwo é\nthr');
    // The é (2 bytes) is split between pushes; the line still decodes whole.
    cut.push(bytes.subarray(0, 9), 100);
    cut.push(bytes.subarray(9), 109);
    expect(out).toEqual([
      ['one', 105],
      ['two é', 112],
    ]);
    cut.push(Buffer.from('ee\n'), 115);
    expect(out.at(-1)).toEqual(['three', 118]);
  });

  it("reads the last lines of a run, never before its start, and the offset of a file's tail", async () => {
    const file = modelLogFile(join(dir, 'nested'), 'a/b:c');
    expect(file).toBe(join(dir, 'nested', 'a_b_c.log'));
    const first = openChildLog(file, '--- first');
    await appendFile(file, 'old 1\nold 2\n');
    closeSync(first.fd);
    expect(first.start).toBe('--- first\n'.length);
    const second = openChildLog(file, '--- second');
    closeSync(second.fd);
    await appendFile(file, 'new 1\nnew 2\nunfinished');
    expect(await lastLines(file, second.start, 10)).toEqual(['new 1', 'new 2']);
    expect(await lastLines(file, first.start, 3)).toEqual(['--- second', 'new 1', 'new 2']);
    // A window that starts mid-line drops the piece it cannot read whole.
    expect(await lastLines(file, 0, 10, 16)).toEqual(['new 2']);
    expect(await lastLines(file, 0, 10, 17)).toEqual(['new 2']);
    expect(await lastLines(file, 0, 10, 15)).toEqual([]);
    const text = await readFile(file, 'utf8');
    expect(await tailOffset(file, 2)).toBe(text.indexOf('new 1'));
    expect(await tailOffset(file, 100)).toBe(0);
    expect(await tailOffset(join(dir, 'missing.log'), 5)).toBe(0);
    expect(await lastLines(join(dir, 'missing.log'), 0, 5)).toEqual([]);
  });

  it('resumes a live tail where its reader got to, unless that is gone or too far back', async () => {
    const file = join(dir, 'resume.log');
    await writeFile(file, 'a\nb\nc\nd\n');
    const lastTwo = 'a\nb\n'.length;
    expect(await resumeOffset(file, 2, 2)).toBe(2);
    expect(await resumeOffset(file, undefined, 2)).toBe(lastTwo);
    // Past the end: the file was trimmed since.
    expect(await resumeOffset(file, 100, 2)).toBe(lastTwo);
    // Further back than the reader should be sent again.
    expect(await resumeOffset(file, 0, 2, 4)).toBe(lastTwo);
    expect(await resumeOffset(file, 4, 2, 4)).toBe(4);
  });
});

describe('following a file', () => {
  it('delivers what is there, then appended lines, a file created later, and a truncated file from its start', async () => {
    const file = join(dir, 'follow', 'f.log');
    const c = collector();
    const follower = followFile(file, 0, c.onLine);
    try {
      // Created after the follower started.
      await writeFile(file, 'a\nb\n');
      await c.until(2);
      await appendFile(file, 'par');
      await appendFile(file, 'tial\n');
      await c.until(3);
      expect(c.lines).toEqual([
        { line: 'a', end: 2 },
        { line: 'b', end: 4 },
        { line: 'partial', end: 12 },
      ]);
      // Shrunk (rotated or truncated): read again from the start.
      await truncate(file, 0);
      await appendFile(file, 'fresh\n');
      await c.until(4);
      expect(c.lines[3]).toEqual({ line: 'fresh', end: 6 });
    } finally {
      follower.close();
    }
    // Resuming from an offset skips what came before it.
    const r = collector();
    const resumed = followFile(file, 0, r.onLine);
    await r.until(1);
    resumed.close();
    await appendFile(file, 'after close\n');
    const again = collector();
    const tail = followFile(file, 6, again.onLine);
    await again.until(1);
    tail.close();
    expect(again.lines).toEqual([{ line: 'after close', end: 18 }]);
    expect(r.lines.map((l) => l.line)).toEqual(['fresh']);
  });
});

describe('a real llama-server run', () => {
  it('writes straight to the log file (no pipe through the gateway); a failed run explains itself from its own lines', async () => {
    const file = join(dir, 'tiny.log');
    const spec = {
      ...plumbing,
      model: 'tiny',
      binary: fixtures.llamaServer,
      logFile: file,
      startupTimeoutMs: 30_000,
      stopTimeoutMs: 5_000,
    };
    const runner = new Runner({ ...spec, args: ['-m', fixtures.models.chat, '-c', '256', '-t', '1', '--no-webui'] });
    const c = collector();
    let listening: (() => void) | undefined;
    const heard = new Promise<void>((r) => (listening = r));
    const follower = followFile(file, 0, (line, end) => {
      c.onLine(line, end);
      if (/listening on http/.test(line)) listening?.();
    });
    try {
      await runner.start();
      for (const fd of [1, 2]) expect(await readlink(`/proc/${runner.pid}/fd/${fd}`)).toBe(file);
      await heard;
      await runner.stop();
    } finally {
      follower.close();
    }
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^--- \S+ starting \S+llama-server -m /);
    expect(c.lines[0]!.line).toMatch(/^--- \S+ starting/);

    const broken = new Runner({ ...spec, args: ['-m', fixtures.models.chat, '--no-such-flag'] });
    await expect(broken.start()).rejects.toThrow(/failed to load/);
    expect(broken.state).toBe('failed');
    expect(broken.failure!.reason).toMatch(/no-such-flag|invalid argument|unknown/i);
    // Only the failed run's lines: the first run's "listening" line is in the file but not in the failure.
    expect(broken.failure!.lastLines.length).toBeGreaterThan(0);
    expect(broken.failure!.lastLines.join('\n')).not.toMatch(/listening on http/);
    expect(await readFile(file, 'utf8')).toContain(broken.failure!.lastLines.at(-1));
  });
});

const LIMIT = 1500;
async function complete(runner: Runner): Promise<void> {
  const res = await runner.client!.forward({
    path: '/v1/chat/completions',
    body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 },
  });
  expect(res.status).toBe(200);
  res.body.resume();
}

describe('a bounded log file', () => {
  it("moves a running child's log aside at the limit; the child goes on writing at the start of the file", async () => {
    const file = join(dir, 'bounded.log');
    // Start-up output stays under the limit; the first answer's lines take the file over it.
    const runner = new Runner({
      ...plumbing,
      model: 'tiny',
      binary: fixtures.llamaServer,
      args: ['-m', fixtures.models.chat, '-c', '256', '-t', '1', '--no-webui'],
      logFile: file,
      logMaxBytes: LIMIT,
      logCheckMs: 20,
      startupTimeoutMs: 30_000,
      stopTimeoutMs: 5_000,
    });
    const trimmed = once(runner, 'logTrimmed');
    try {
      await runner.start();
      expect((await stat(file)).size).toBeLessThan(LIMIT);
      await complete(runner);
      await trimmed;
      await complete(runner);
    } finally {
      await runner.stop();
    }
    expect(await readFile(previousLog(file), 'utf8')).toMatch(/^--- \S+ starting [\s\S]*listening on http/);
    // The second answer's lines start the file (append mode), not its old length in zero bytes.
    const after = await readFile(file, 'utf8');
    expect(after).toMatch(/print_timing/);
    expect(after).not.toContain('\0');
    expect(after.length).toBeLessThan(LIMIT);
    expect(await runner.lastLines(50)).toEqual(after.trimEnd().split('\n'));
    // A file over the limit when a run starts is moved aside whole; the run starts a fresh file.
    const big = 'x'.repeat(LIMIT);
    await appendFile(file, `${big}\n`);
    const next = new Runner({ ...runner.spec, logCheckMs: 60_000 });
    await next.start();
    await next.stop();
    expect(await readFile(previousLog(file), 'utf8')).toContain(big);
    expect(await readFile(file, 'utf8')).toMatch(/^--- \S+ starting /);
  });
});

describe('a logs directory that cannot be written', () => {
  it('fails /ready and every load with the reason, and starts no llama-server', async () => {
    const t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    try {
      // A regular file where the directory should be: neither mkdir nor open can succeed.
      await writeFile(join(t.dir, 'not-a-dir'), '');
      await writeFile(t.configFile, `${await readFile(t.configFile, 'utf8')}logs_dir: not-a-dir/logs\n`);
      expect((await t.gw.reload()).ok).toBe(true);
      const ready = await fetch(`${t.url}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: Record<string, string> }).checks['logs directory']).toMatch(
        /ENOTDIR|EEXIST/,
      );
      const res = await post(`${t.url}/api/generate`, { model: 'tiny', prompt: 'hi', stream: false });
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: string }).error).toMatch(
        /^model "tiny:latest" failed to load: cannot write its log file \(logs_dir\): ENOTDIR/,
      );
      expect(t.gw.scheduler.loaded().filter((l) => l.pid !== undefined)).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
