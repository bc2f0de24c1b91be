import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { openDatabase, type StoreOptions } from './database.js';
import type { PostgresStoreOptions } from './postgres/store.js';
import type { Store } from './store.js';

export const isPostgresUrl = (s: string): boolean => /^postgres(ql)?:\/\//i.test(s);

export type OpenStoreOptions = Pick<StoreOptions, 'onWriteError' | 'now'> &
  Pick<PostgresStoreOptions, 'onAvailability' | 'startupWaitMs'>;

/**
 * The store the config names: PostgreSQL when `store.url` is set, else the SQLite file at
 * `store.path` (relative to `cwd`). The PostgreSQL driver is loaded only when it is used.
 */
type StoreConfig = Config['store'];

export async function openStore(
  config: Pick<StoreConfig, 'path' | 'url' | 'pool_size'>,
  cwd: string,
  options: OpenStoreOptions = {},
): Promise<Store> {
  if (config.url) {
    const { openPostgresStore } = await import('./postgres/store.js');
    return openPostgresStore(config.url, { ...options, max: config.pool_size });
  }
  return openDatabase(resolve(cwd, config.path), options);
}

/**
 * The store settings a command-line tool uses: `--db` (a SQLite file or a postgres:// URL) when
 * given, else those of the config Corral would read (`--config`, CORRAL_CONFIG, config/corral.yaml;
 * a missing default file means the defaults), paths relative to the working directory as the server
 * resolves them.
 */
export async function storeConfigFor(db: string | undefined, configFile: string | undefined): Promise<StoreConfig> {
  const file = configFile ?? process.env.CORRAL_CONFIG ?? 'config/corral.yaml';
  const { config } = await loadConfig(resolve(file), { optional: configFile === undefined || db !== undefined });
  if (db === undefined) return config.store;
  return isPostgresUrl(db) ? { ...config.store, url: db } : { ...config.store, url: '', path: db };
}
