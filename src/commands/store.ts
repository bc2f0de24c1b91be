import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { backupDatabase } from '../store/backup.js';

export interface StoreCliIo {
  out(line: string): void;
  err(line: string): void;
}

const defaultIo: StoreCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** The database a command works on: `--db`, else `store.path` of the config Corral would read. */
export async function databasePath(db: string | undefined, config: string | undefined): Promise<string> {
  if (db) return resolve(db);
  const loaded = await loadConfig(config ?? process.env.CORRAL_CONFIG ?? 'config/corral.yaml', { optional: true });
  return resolve(loaded.config.store.path);
}

/** `corral store backup <file> [--db path | --config file] [--force]`. */
export async function storeCommand(args: string[], io: StoreCliIo = defaultIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      db: { type: 'string' },
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean', default: false },
    },
  });
  const [sub, file] = positionals;
  if (sub !== 'backup' || !file) {
    io.err('usage: corral store backup <file> [--db path | --config file] [--force]');
    return 2;
  }
  const destination = resolve(file);
  if (existsSync(destination) && !values.force) {
    io.err(`${destination} exists; choose another name or pass --force to replace it`);
    return 1;
  }
  if (!existsSync(dirname(destination))) {
    io.err(`directory ${dirname(destination)} does not exist`);
    return 1;
  }
  const source = await databasePath(values.db, values.config);
  const { pages, bytes } = await backupDatabase(source, destination);
  io.out(`backed up ${source} to ${destination} (${pages} pages, ${bytes} bytes)`);
  return 0;
}
