import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { backupDatabase } from '../store/backup.js';
import { isPostgresUrl, storeConfigFor } from '../store/open.js';

export interface StoreCliIo {
  out(line: string): void;
  err(line: string): void;
}

const defaultIo: StoreCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

const USAGE =
  'usage: corral store backup <file> [--db path | --config file] [--force]\n' +
  '       corral store migrate --from <sqlite file> --to <postgres://…>';

/** `corral store backup <file> …` and `corral store migrate --from <file> --to <url>`. */
export async function storeCommand(args: string[], io: StoreCliIo = defaultIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      db: { type: 'string' },
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean', default: false },
      from: { type: 'string' },
      to: { type: 'string' },
    },
  });
  const [sub, file] = positionals;
  if (sub === 'backup' && file) return backup(file, values, io);
  if (sub === 'migrate' && !file && values.from && values.to) return migrateTo(values.from, values.to, io);
  io.err(USAGE);
  return 2;
}

async function backup(file: string, values: { db?: string; config?: string; force?: boolean }, io: StoreCliIo) {
  const destination = resolve(file);
  if (existsSync(destination) && !values.force) {
    io.err(`${destination} exists; choose another name or pass --force to replace it`);
    return 1;
  }
  if (!existsSync(dirname(destination))) {
    io.err(`directory ${dirname(destination)} does not exist`);
    return 1;
  }
  const config = await storeConfigFor(values.db, values.config);
  if (config.url) {
    io.err(
      'corral store backup copies a SQLite store; this one is in PostgreSQL: back it up with pg_dump ' +
        '(see "PostgreSQL" in docs/operations.md)',
    );
    return 1;
  }
  const source = resolve(config.path);
  const { pages, bytes } = await backupDatabase(source, destination);
  io.out(`backed up ${source} to ${destination} (${pages} pages, ${bytes} bytes)`);
  return 0;
}

/** Copies a single node's SQLite store into an empty PostgreSQL database (see store/copy.ts). */
async function migrateTo(from: string, to: string, io: StoreCliIo): Promise<number> {
  if (!isPostgresUrl(to)) {
    io.err(`--to must be a postgres:// URL, not "${to}"`);
    return 2;
  }
  const source = resolve(from);
  if (!existsSync(source)) {
    io.err(`${source} does not exist`);
    return 1;
  }
  const { connectPostgres, redactUrl } = await import('../store/postgres/pool.js');
  const { copySqliteToPostgres } = await import('../store/copy.js');
  const target = connectPostgres(to, { max: 2 });
  try {
    const copied = await copySqliteToPostgres(source, target, io.out);
    const total = copied.reduce((n, c) => n + c.rows, 0);
    io.out(`copied ${total} rows from ${source} to ${redactUrl(to)}; set store.url to it and restart Corral`);
    return 0;
  } finally {
    await target.close();
  }
}
