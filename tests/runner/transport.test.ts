import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import type { LlamaEndpoint } from '../../src/llama/client.js';
import { Runner, type RunnerSpec } from '../../src/runner/runner.js';
import { MAX_SOCKET_PATH } from '../../src/runner/socket-dir.js';
import { startGateway } from '../helpers/gateway.js';
import { runnerPlumbing, tinySpec } from '../helpers/runner.js';
import { running } from '../scheduler/helpers.js';

const fixtures = inject('fixtures');
const logs = mkdtempSync(join(tmpdir(), 'corral-transport-'));
const unix = runnerPlumbing();
const tcp = runnerPlumbing({ tcp: true });
let runner: Runner | undefined;
afterEach(async () => {
  await runner?.stop();
  runner = undefined;
});
afterAll(() => {
  unix.remove();
  rmSync(logs, { recursive: true, force: true });
});

const spec = (plumbing: Pick<RunnerSpec, 'socketDir' | 'connect'>, extra: Partial<RunnerSpec> = {}): RunnerSpec =>
  tinySpec(plumbing, join(logs, 'tiny.log'), extra);

/** The inodes of a process's sockets, from its file descriptors. */
function socketInodes(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      } catch {
        return undefined;
      }
    })
    .filter((i): i is string => i !== undefined);
}

/** Every TCP socket's inode on the machine (IPv4 and IPv6), from /proc/net. */
function tcpInodes(): Set<string> {
  const out = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) out.add(inode);
    }
  }
  return out;
}

/** Unix sockets by inode with their path, from /proc/net/unix. */
function unixPaths(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[6]) out.set(f[6], f[7] ?? '');
  }
  return out;
}

/** A raw GET to an endpoint, without Corral's client (as another local process would try). */
function rawGet(ep: LlamaEndpoint, path: string): Promise<{ status: number; body: string }> {
  const target = 'socketPath' in ep ? { socketPath: ep.socketPath } : { host: ep.host, port: ep.port };
  return new Promise((resolve, reject) => {
    request({ ...target, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('children on private sockets', () => {
  it('a child listens only on a Unix socket in a 0700 directory, with no TCP socket at all', async () => {
    runner = new Runner(spec(unix));
    await runner.start();
    const ep = runner.endpoint as { socketPath: string };
    expect(Buffer.byteLength(ep.socketPath)).toBeLessThan(MAX_SOCKET_PATH);
    expect(statSync(dirname(ep.socketPath)).mode & 0o777).toBe(0o700);
    expect(runner.argv.slice(-2)).toEqual(['--host', ep.socketPath]);
    const inodes = socketInodes(runner.pid!);
    expect(inodes.length).toBeGreaterThan(0);
    const tcpSockets = tcpInodes();
    expect(inodes.filter((i) => tcpSockets.has(i))).toEqual([]);
    const paths = unixPaths();
    expect(inodes.map((i) => paths.get(i))).toContain(ep.socketPath);
    expect(await runner.client!.health()).toBe(true);
    expect((await rawGet(ep, '/health')).status).toBe(200);
  });

  it('the socket file goes with its child, also when the child is killed', async () => {
    runner = new Runner(spec(unix));
    await runner.start();
    const { socketPath } = runner.endpoint as { socketPath: string };
    expect(statSync(socketPath).isSocket()).toBe(true);
    const exited = once(runner, 'exit');
    process.kill(runner.pid!, 'SIGKILL');
    await exited;
    expect(() => statSync(socketPath)).toThrow(/ENOENT/);
    // The next start gets a socket of its own and answers.
    await runner.start();
    expect((runner.endpoint as { socketPath: string }).socketPath).not.toBe(socketPath);
    expect(await runner.client!.slotContext()).toBe(256);
  });

  it('TCP fallback: a random key per child, required by everything but /health, and in no command line or log', async () => {
    runner = new Runner(spec(tcp));
    await runner.start();
    const ep = runner.endpoint as { host: string; port: number; apiKey: string };
    expect(ep.host).toBe('127.0.0.1');
    expect(ep.apiKey.length).toBeGreaterThanOrEqual(32);
    const other = await rawGet(ep, '/props');
    expect(other.status).toBe(401);
    expect((await rawGet(ep, '/slots')).status).toBe(401);
    expect(await runner.client!.slotContext()).toBe(256);
    expect(readFileSync(`/proc/${runner.pid}/cmdline`, 'latin1')).not.toContain(ep.apiKey);
    expect(runner.command.join(' ')).not.toContain(ep.apiKey);
    const key = ep.apiKey;
    const first = runner.pid;
    await runner.stop();
    await runner.start();
    expect(runner.pid).not.toBe(first);
    expect((runner.endpoint as { apiKey: string }).apiKey).not.toBe(key);
    expect(readFileSync(join(logs, 'tiny.log'), 'utf8')).not.toContain(key);
  });

  it('a child whose pid record cannot be written is stopped, and the start fails with the reason', async () => {
    let spawned: number | undefined;
    const pids = {
      add(pid: number) {
        spawned = pid;
        throw new Error('EACCES: permission denied, open pids/1234.json');
      },
      remove() {},
    };
    runner = new Runner(spec(unix, { pids }));
    await expect(runner.start()).rejects.toThrow(/failed to load: EACCES/);
    expect(spawned).toBeDefined();
    expect(await running(spawned!)).toBe(false);
    expect(runner.state).toBe('failed');
    expect(runner.client).toBeUndefined();
  });
});

describe('a gateway and its socket directory', () => {
  it('one private directory per gateway, removed on close; the key of a TCP child never reaches its logs', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
    const res = await fetch(`${t.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 1 } }),
    });
    expect(res.status).toBe(200);
    const runnerOf = t.gw.scheduler.loaded()[0]!.runner as Runner;
    const dir = dirname((runnerOf.endpoint as { socketPath: string }).socketPath);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await t.close();
    expect(() => statSync(dir)).toThrow(/ENOENT/);

    const k = await startGateway(
      { llama_server: { transport: 'tcp' }, models: { tiny: { path: fixtures.models.chat } } },
      { logger: { level: 'debug', stream: sink } },
    );
    try {
      const answer = await fetch(`${k.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 1 } }),
      });
      expect(answer.status).toBe(200);
      const r = k.gw.scheduler.loaded()[0]!.runner as Runner;
      const key = (r.endpoint as { apiKey: string }).apiKey;
      expect(lines.join('')).toContain('loopback TCP');
      expect(lines.join('')).not.toContain(key);
      expect(readFileSync(r.spec.logFile, 'utf8')).not.toContain(key);
    } finally {
      await k.close();
    }
  });
});
