import type Database from 'better-sqlite3';

/** Small key/value facts the server keeps between starts (e.g. the session signing secret). */
export function createSettingsRepo(db: Database.Database) {
  const get = db.prepare('SELECT value FROM settings WHERE key = ?');
  const set = db.prepare(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  const insertIfMissing = db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)');
  return {
    get: (key: string) => (get.get(key) as { value: string } | undefined)?.value,
    set: (key: string, value: string) => void set.run(key, value),
    /** Race-free across processes sharing the file: the first writer wins and everyone reads its value. */
    getOrCreate(key: string, make: () => string): string {
      insertIfMissing.run(key, make());
      return (get.get(key) as { value: string }).value;
    },
  };
}

export type SettingsRepo = ReturnType<typeof createSettingsRepo>;
