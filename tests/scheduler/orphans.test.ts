import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/runner/free-port.js';
import { running } from './helpers.js';
import { builtCli, CLI } from '../helpers/cli.js';

const cli = CLI;
const fixtures = inject('fixtures');
let dir: string;
let configFile: string;
const gateways: ChildProcess[] = [];

beforeAll(async () => {
  // The test runs the real CLI, so it needs the compiled output.
  await builtCli();
  dir = await mkdtemp(join(tmpdir(), 'corral-orphans-'));
  await mkdir(join(dir, 'config'));
  configFile = join(dir, 'config', 'corral.yaml');
  await writeFile(
    configFile,
    stringify({
      llama_server: { binary: fixtures.llamaServer, args: ['-t', '1'], stop_timeout: '5s' },
      defaults: { ctx_size: 512 },
      models: { pinned: { path: fixtures.models.chat, pinned: true } },
    }),
  );
});
afterAll(async () => {
  for (const g of gateways) if (g.exitCode === null && g.signalCode === null) g.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/**
 * Starts `corral serve` and resolves once its pinned model has loaded (from its own log). `env` is
 * added to the test's environment.
 */
async function startCli(env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [cli, 'serve', '--config', configFile, '--port', String(port)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  gateways.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('"msg":"model loaded"')) resolve();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before loading: ${out}`)));
  });
  return child;
}

async function recordedPids(): Promise<number[]> {
  const files = await readdir(join(dir, 'data', 'pids')).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('.json')).map((f) => Number(f.replace('.json', '')));
}

/** Bounded wait for a process to be gone: it is another process's exit, which this one cannot await. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!(await running(pid))) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

describe('no orphans', () => {
  it('a llama-server dies with its gateway, even of kill -9 (setpriv --pdeathsig)', async () => {
    const gateway = await startCli();
    const [child] = await recordedPids();
    expect(child).toBeGreaterThan(0);
    expect(await readFile(`/proc/${child}/cmdline`, 'utf8')).toContain(fixtures.llamaServer);
    const exited = once(gateway, 'exit');
    gateway.kill('SIGKILL');
    await exited;
    expect(await gone(child!)).toBe(true);
    // Its record is left for the next start, which finds the pid gone and removes it.
    expect(await recordedPids()).toEqual([child]);
  });

  it('after kill -9 of a gateway without setpriv, the next start reaps the llama-server it left behind; SIGTERM leaves none', async () => {
    // No setpriv on PATH (node and llama-server are named by absolute paths): no parent-death signal.
    const first = await startCli({ PATH: '/nonexistent' });
    const [orphan] = await recordedPids();
    expect(orphan).toBeGreaterThan(0);
    const exited = once(first, 'exit');
    first.kill('SIGKILL');
    await exited;
    // The control: without the death signal the child survives its gateway's kill -9.
    expect(await running(orphan!)).toBe(true);

    const second = await startCli();
    expect(await running(orphan!)).toBe(false);
    const now = await recordedPids();
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(orphan);

    const stopped = once(second, 'exit');
    second.kill('SIGTERM');
    expect((await stopped)[0]).toBe(0);
    expect(await running(now[0]!)).toBe(false);
    expect(await recordedPids()).toEqual([]);
  });
});
