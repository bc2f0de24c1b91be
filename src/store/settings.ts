import type { SqlDb } from './sql.js';

/** Small key/value facts the server keeps between starts (e.g. the session signing secret). */
export function createSettingsRepo(db: SqlDb) {
  const get = async (key: string) =>
    (await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  return {
    get,
    async set(key: string, value: string): Promise<void> {
      await db.run(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      );
    },
    /** Race-free across processes sharing the database: the first writer wins and everyone reads its value. */
    async getOrCreate(key: string, make: () => string): Promise<string> {
      await db.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, make()]);
      return (await get(key))!;
    },
  };
}

export type SettingsRepo = ReturnType<typeof createSettingsRepo>;
