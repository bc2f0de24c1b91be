import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/runner/free-port.js';

export interface TestPostgres {
  /** postgres://corral@127.0.0.1:PORT/postgres */
  url: string;
  /** A fresh, empty database on this server, for one test's fleet. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Debian's server binaries (/usr/lib/postgresql/<version>/bin), newest version first; PG_BIN wins. */
export async function findPostgresServer(): Promise<string | undefined> {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? (await readdir(root)).sort((a, b) => Number(b) - Number(a)) : [];
  return versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'postgres')));
}

async function serverBin(): Promise<string> {
  const found = await findPostgresServer();
  if (!found) throw new Error('no PostgreSQL server found: install Debian\'s "postgresql" package or set PG_BIN');
  return found;
}

/** PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (else `nobody`). */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // no such user
    }
  }
  throw new Error('running as root, and neither a "postgres" nor a "nobody" user exists to run PostgreSQL');
}

function run(bin: string, args: string[], as: ReturnType<typeof runAs>): ChildProcess {
  return spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(as ?? {}) });
}

async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Connects until the server answers (it accepts connections once recovery and startup are done). */
async function untilReady(url: string, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`postgres exited with ${server.exitCode}:\n${log()}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${(err as Error).message}\n${log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * A throw-away PostgreSQL server: initdb in a temporary directory, a port and a socket directory of its
 * own, trust authentication on loopback, durability off (tests only). Stopped and deleted by stop().
 */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = await serverBin();
  const as = runAs();
  const dir = await mkdtemp(join(tmpdir(), 'corral-pg-'));
  if (as) await chown(dir, as.uid, as.gid);
  await chmod(dir, 0o700);
  const data = join(dir, 'data');
  const init = run(join(bin, 'initdb'), ['-D', data, '-U', 'corral', '--auth=trust', '-E', 'UTF8', '--no-sync'], as);
  let initLog = '';
  init.stdout?.on('data', (c: Buffer) => (initLog += c.toString()));
  init.stderr?.on('data', (c: Buffer) => (initLog += c.toString()));
  if ((await exited(init)) !== 0) throw new Error(`initdb failed:\n${initLog}`);
  const port = await freePort();
  const settings = ['fsync=off', 'full_page_writes=off', 'synchronous_commit=off', 'max_connections=100'];
  const server = run(
    join(bin, 'postgres'),
    ['-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port), ...settings.flatMap((s) => ['-c', s])],
    as,
  );
  let log = '';
  server.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  const url = `postgres://corral@127.0.0.1:${port}/postgres`;
  await untilReady(url, server, () => log);
  return {
    url,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return `postgres://corral@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    async stop() {
      // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, nothing is waited for.
      if (server.exitCode === null) {
        server.kill('SIGINT');
        await exited(server);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
