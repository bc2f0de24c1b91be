import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { COMMANDS, ENV_VARS } from '../../src/cli/spec.js';

const root = resolve(import.meta.dirname, '../..');
const launcher = join(root, 'bin', 'corral');
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'corral-cli-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

const corral = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) =>
  execa(launcher, args, {
    cwd: opts.cwd ?? work,
    env: { CORRAL_LLAMA_SERVER: inject('fixtures').llamaServer, ...opts.env },
    reject: false,
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('corral --help', () => {
  it('lists every command, every option of every command and every environment variable', async () => {
    const { stdout, exitCode } = await corral(['--help']);
    expect(exitCode).toBe(0);
    const lines = stdout.split('\n').map((l) => l.trim().replace(/ {2,}/g, '  '));
    for (const c of COMMANDS) expect(lines).toContain(`${c.name}  ${c.summary}`);
    for (const name of Object.keys(ENV_VARS)) expect(stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
    for (const c of COMMANDS) {
      const own = await corral([c.name, '--help']);
      expect(own.exitCode).toBe(0);
      expect(own.stdout.startsWith(`usage: ${c.usage}`)).toBe(true);
      for (const [name, o] of Object.entries(c.options)) {
        expect(own.stdout).toMatch(new RegExp(`${o.short ? `-${o.short}, ` : ' {4}'}--${name}\\b.* {2}\\S`));
      }
      for (const e of c.env) expect(own.stdout).toContain(`  ${e} `);
      expect((await corral(['help', c.name])).stdout).toBe(own.stdout);
      // The user documentation shows each command's help as it is.
      expect(await readFile(join(root, 'docs', 'cli.md'), 'utf8')).toContain(own.stdout);
    }
  });

  it('knows every CORRAL_ variable the code reads', async () => {
    const read = new Set<string>();
    for (const f of await sourceFiles(join(root, 'src'))) {
      for (const m of (await readFile(f, 'utf8')).matchAll(/\bCORRAL_[A-Z_]+\b/g)) read.add(m[0]);
    }
    expect([...read].filter((v) => !(v in ENV_VARS))).toEqual([]);
  });

  it('an unknown option, command or stray argument is an error that points at the help', async () => {
    const cases: [string[], RegExp][] = [
      [['serve', '--prot', '8080'], /Unknown option '--prot'/],
      [['provision', '--gpu'], /Unknown option '--gpu'/],
      [['doctor', 'now'], /Unexpected argument 'now'/],
      [['server'], /unknown command "server"/],
      [['serve', '--port', 'eighty'], /--port must be a port number \(0-65535\), not "eighty"/],
    ];
    for (const [args, message] of cases) {
      const run = await corral(args);
      expect(run.exitCode, args.join(' ')).not.toBe(0);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
    expect((await corral(['serve', '--prot', '1'])).stderr).toContain('Run `corral serve --help`');
  });
});

describe('user and token commands', () => {
  it("use the config's store.path, the database the server uses", async () => {
    const dir = join(work, 'store');
    await mkdir(join(dir, 'config'), { recursive: true });
    await writeFile(join(dir, 'config', 'corral.yaml'), 'store:\n  path: state/users.db\n');
    const add = await corral(['user', 'add', 'ada', '--role', 'admin'], { cwd: dir, input: 'a-long-password\n' });
    expect(add.exitCode, add.stderr).toBe(0);
    await access(join(dir, 'state', 'users.db'));
    await expect(access(join(dir, 'data', 'corral.db'))).rejects.toThrow();
    expect((await corral(['user', 'list'], { cwd: dir })).stdout).toMatch(/^ada\tadmin\t/m);
    // --db still names another file, and --config another config.
    const other = join(dir, 'other.db');
    expect((await corral(['user', 'list', '--db', other], { cwd: dir })).stdout).toBe('');
    await writeFile(join(dir, 'alt.yaml'), 'store:\n  path: alt.db\n');
    expect((await corral(['token', 'list', '--config', 'alt.yaml'], { cwd: dir })).exitCode).toBe(0);
    await access(join(dir, 'alt.db'));
  });
});

describe('corral serve', () => {
  const started: ChildProcess[] = [];
  afterAll(() => {
    for (const c of started) c.kill('SIGKILL');
  });

  /** Starts serve in a fresh directory and resolves with what it printed once it says where it listens. */
  async function serve(args: string[], env: NodeJS.ProcessEnv = {}) {
    const dir = await mkdtemp(join(work, 'serve-'));
    const child = spawn(launcher, ['serve', '--port', '0', ...args], {
      cwd: dir,
      env: { ...process.env, CORRAL_LLAMA_SERVER: inject('fixtures').llamaServer, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    await new Promise<void>((ok, fail) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/Models: .*\n─+\n/.test(stderr)) ok();
      });
      child.once('exit', (code) => fail(new Error(`serve exited ${code}:\n${stderr}`)));
    });
    const url = /Corral is listening on (http:\/\/\S+)/.exec(stderr)![1]!;
    return { child, dir, url, out: () => stdout, err: () => stderr };
  }

  it('prints where it listens, the first-run link and where models go as one block; JSON logs when piped', async () => {
    const s = await serve([]);
    const block = /─+\n([\s\S]*?)\n─+\n/.exec(s.err())![1]!.split('\n');
    expect(block[0]).toBe(`Corral is listening on ${s.url}`);
    expect(block[1]).toMatch(
      new RegExp(`^First run: create the admin account at ${s.url}/admin/setup\\?token=\\S+ \\(valid until`),
    );
    expect(block[2]).toBe(
      `Models: put .gguf files in ${join(s.dir, 'data', 'models')}, or pull them from the admin UI`,
    );
    const setup = await fetch(block[1]!.split(' at ')[1]!.split(' ')[0]!);
    expect(setup.status).toBe(200);
    const lines = s.out().trim().split('\n');
    expect(lines.every((l) => JSON.parse(l) && true)).toBe(true);
    expect(s.out()).toContain('llama-server runs on the CPU only');
    // Started through the launcher: the runtime flags are there, so no word about missing ones.
    expect(s.out()).not.toContain('started without the runtime flags');
    s.child.kill('SIGTERM');
    const [code] = await once(s.child, 'exit');
    expect(code).toBe(0);
  });

  it('--log-format pretty prints human-readable lines; CORRAL_PORT is read', async () => {
    const s = await serve(['--log-format', 'pretty'], { CORRAL_ADMIN_PASSWORD: 'first-admin-password' });
    expect(s.out()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: llama-server runs on the CPU only/m);
    expect(s.err()).not.toContain('First run');
    s.child.kill('SIGTERM');
    await once(s.child, 'exit');
    const bad = await corral(['serve'], { env: { CORRAL_PORT: '99999' } });
    expect(bad.stderr).toContain('CORRAL_PORT must be a port number (0-65535), not "99999"');
  });
});
