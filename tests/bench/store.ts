import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { findLlamaServer } from '../../src/provision/llama-binary.js';
import { TestPostgres } from '../setup/postgres-server.js';
import { median, now } from './stats.js';

/**
 * The credential check every request with an API token pays, on each store, side by side in one
 * run: subjects take turns within each round, and the table shows the median over rounds with the
 * spread (min–max). BENCH_BASE=<root of another built checkout> adds that build's SQLite store as
 * the "before" rows.
 *
 *   npm run bench:store                      # this build: SQLite and PostgreSQL
 *   BENCH_BASE=/tmp/base npm run bench:store # and another build beside it
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CHECKS = 20_000;
const HTTP_REQUESTS = 3000;
const HTTP_CONNECTIONS = 16;
const log = (line: string) => void process.stderr.write(`[bench store] ${line}\n`);

/** What a build exports that the bench uses (the store API became async; awaiting a plain value is harmless). */
interface Build {
  label: string;
  openDatabase(path: string, options?: object): Store;
  openPostgresStore?(url: string, options?: object): Promise<Store>;
  createApiToken(
    store: Store,
    options: object,
  ): { id: number; secret: string } | Promise<{ id: number; secret: string }>;
  checkApiToken(store: Store, secret: string): unknown;
  createGateway(options: object): Promise<{ app: { listen(o: object): Promise<string> }; close(): Promise<void> }>;
}
interface Store {
  apiTokens: { findById(id: number): unknown; touch(id: number): void };
  close(): unknown;
}

async function load(root: string, label: string): Promise<Build> {
  const mod = (p: string) => import(pathToFileURL(join(root, 'dist/src', p)).href);
  const [db, tokens, gateway] = await Promise.all([mod('store/database.js'), mod('auth/tokens.js'), mod('gateway.js')]);
  const pgStore = await mod('store/postgres/store.js').catch(() => undefined);
  return { label, ...db, ...tokens, ...gateway, openPostgresStore: pgStore?.openPostgresStore };
}

interface Subject {
  label: string;
  run(): Promise<number>;
  close(): Promise<void>;
}

/** Checks per second of: the token lookup and checks, the limits' lookup by id, and the last-used stamp. */
async function checkSubject(build: Build, label: string, store: Store): Promise<Subject> {
  const token = await build.createApiToken(store, { name: 'bench', role: 'viewer' });
  const check = async () => {
    // A build whose store is synchronous is measured without awaits: that is the path it had.
    const r = build.checkApiToken(store, token.secret);
    if (r instanceof Promise) {
      await r;
      await store.apiTokens.findById(token.id);
    } else store.apiTokens.findById(token.id);
    store.apiTokens.touch(token.id);
  };
  return {
    label,
    async run() {
      const t0 = now();
      for (let i = 0; i < CHECKS; i++) await check();
      return CHECKS / ((now() - t0) / 1000);
    },
    close: async () => void (await store.close()),
  };
}

/** Requests per second of GET /api/tags with a bearer token through a whole gateway (auth required). */
async function httpSubject(build: Build, label: string, work: string, store: object): Promise<Subject> {
  const llama = await findLlamaServer({});
  if (!llama) throw new Error('no llama-server: run `corral provision` first');
  const dir = await mkdtemp(join(work, 'gw-'));
  const configFile = join(dir, 'corral.yaml');
  const config = {
    llama_server: { binary: llama.path },
    models_dirs: [],
    ollama_store: 'off',
    auth: { mode: 'required' },
  };
  await writeFile(configFile, stringify({ ...config, store }));
  const gw = await build.createGateway({ configFile, cwd: dir, optionalConfig: false, watchConfig: false });
  const url = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  const { secret } = await build.createApiToken((gw as unknown as { store: Store }).store, {
    name: 'b',
    role: 'viewer',
  });
  const pool = new Pool(url, { connections: HTTP_CONNECTIONS });
  const headers = { authorization: `Bearer ${secret}` };
  return {
    label,
    async run() {
      let left = HTTP_REQUESTS;
      const t0 = now();
      await Promise.all(
        Array.from({ length: HTTP_CONNECTIONS }, async () => {
          while (left-- > 0) {
            const res = await pool.request({ method: 'GET', path: '/api/tags', headers });
            await res.body.dump();
            if (res.statusCode !== 200) throw new Error(`${label}: status ${res.statusCode}`);
          }
        }),
      );
      return HTTP_REQUESTS / ((now() - t0) / 1000);
    },
    async close() {
      await pool.close();
      await gw.close();
    },
  };
}

async function measure(title: string, subjects: Subject[]): Promise<void> {
  const results = new Map(subjects.map((s) => [s, [] as number[]]));
  await Promise.all(subjects.map((s) => s.run())); // warm-up, not counted
  for (let round = 0; round < ROUNDS; round++) {
    // A different subject goes first each round, so none always runs on a cold or a hot machine.
    for (let i = 0; i < subjects.length; i++) {
      const s = subjects[(i + round) % subjects.length]!;
      results.get(s)!.push(await s.run());
    }
  }
  const base = median(results.get(subjects[0]!)!);
  process.stdout.write(`\n${title} (${ROUNDS} rounds; median, min–max, ratio to the first row)\n`);
  for (const [s, v] of results) {
    const m = median(v);
    const range = `${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)}`;
    process.stdout.write(
      `  ${s.label.padEnd(42)} ${m.toFixed(0).padStart(8)}/s  (${range})  ×${(m / base).toFixed(2)}\n`,
    );
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'corral-bench-store-'));
  const here = await load(resolve(import.meta.dirname, '../../..'), 'this build');
  const before = process.env.BENCH_BASE ? await load(resolve(process.env.BENCH_BASE), 'base') : undefined;
  log('starting a PostgreSQL server (tests/setup/postgres-server.ts)');
  const pg = await TestPostgres.create();
  const subjects: Subject[] = [];
  try {
    const sqlite = (b: Build, name: string, o: object = {}) => b.openDatabase(join(work, `${name}.db`), o);
    if (before) subjects.push(await checkSubject(before, 'SQLite, base build', sqlite(before, 'base')));
    subjects.push(
      await checkSubject(here, 'SQLite, no cache', sqlite(here, 'nocache', { credentialCacheMs: 0 })),
      await checkSubject(here, 'SQLite (1 s cache)', sqlite(here, 'cache')),
      await checkSubject(
        here,
        'PostgreSQL, no cache',
        await here.openPostgresStore!(await pg.createDatabase(), { credentialCacheMs: 0 }),
      ),
      await checkSubject(here, 'PostgreSQL (1 s cache)', await here.openPostgresStore!(await pg.createDatabase())),
    );
    await measure('token check per request (checks/s)', subjects);
    await Promise.all(subjects.splice(0).map((s) => s.close()));

    if (before) subjects.push(await httpSubject(before, 'GET /api/tags, SQLite, base build', work, {}));
    subjects.push(
      await httpSubject(here, 'GET /api/tags, SQLite', work, {}),
      await httpSubject(here, 'GET /api/tags, PostgreSQL', work, { url: await pg.createDatabase() }),
    );
    await measure(`requests with a token through the gateway (${HTTP_CONNECTIONS} connections)`, subjects);
  } finally {
    await Promise.all(subjects.map((s) => s.close()));
    await pg.destroy();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
