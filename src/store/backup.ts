import { rename, rm, stat } from 'node:fs/promises';
import Database from 'better-sqlite3';

export interface BackupResult {
  pages: number;
  bytes: number;
}

/**
 * Copies a live database with SQLite's online backup API: a consistent snapshot, WAL content
 * included, taken while the gateway goes on reading and writing. The copy is written beside its
 * destination and renamed into place only after an integrity check, so a failed backup never
 * leaves a half-written file under the name an operator will restore from.
 */
export async function backupDatabase(source: string, destination: string): Promise<BackupResult> {
  // fileMustExist: a mistyped path must fail, not back up a new empty database.
  const db = new Database(source, { fileMustExist: true });
  const partial = `${destination}.partial-${process.pid}`;
  try {
    db.pragma('busy_timeout = 5000');
    const { totalPages } = await db.backup(partial);
    const copy = new Database(partial);
    try {
      // The copy is one self-contained file (no -wal beside it); Corral switches it back to WAL on open.
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy failed its integrity check: ${String(check)}`);
    } finally {
      copy.close();
    }
    await rename(partial, destination);
    return { pages: totalPages, bytes: (await stat(destination)).size };
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  } finally {
    db.close();
  }
}
