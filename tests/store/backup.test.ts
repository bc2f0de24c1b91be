import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeCommand } from '../../src/commands/store.js';
import { backupDatabase } from '../../src/store/backup.js';
import { openDatabase, type SqliteStore } from '../../src/store/database.js';

const run = promisify(execFile);
const cli = join(new URL('../..', import.meta.url).pathname, 'dist/src/cli.js');

const countUsers = (file: string): number => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('corral store backup', () => {
  let dir: string;
  let store: SqliteStore;
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-backup-'));
    store = openDatabase(join(dir, 'corral.db'));
    lines.length = 0;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies a database that another connection is writing to, without blocking it', async () => {
    const insert = (i: number) => store.users.create(`user-${i}`, 'x'.repeat(200), 'viewer');
    for (let i = 0; i < 2000; i++) insert(i);
    // The rows sit in the WAL, not yet in the main file: a file copy would miss them.
    expect(Number(store.db.pragma('wal_checkpoint(PASSIVE)', { simple: true }))).toBe(0);
    const copy = join(dir, 'copy.db');
    const backup = backupDatabase(join(dir, 'corral.db'), copy);
    // Writes go on while the backup steps through the pages.
    let written = 0;
    await new Promise<void>((done) => {
      const step = (): void => {
        insert(2000 + written++);
        if (written < 5) setImmediate(step);
        else done();
      };
      setImmediate(step);
    });
    const result = await backup;
    expect(written).toBe(5);
    expect(result.pages).toBeGreaterThan(100);
    const copied = countUsers(copy);
    expect(copied).toBeGreaterThanOrEqual(2000);
    expect(copied).toBeLessThanOrEqual(2005);
    const db = new Database(copy, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    expect(readdirSync(dir).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('refuses to overwrite a file unless --force, and never creates a database that was not there', async () => {
    await store.users.create('alice', 'hash', 'admin');
    const target = join(dir, 'taken.db');
    writeFileSync(target, 'not a database');
    expect(await storeCommand(['backup', target, '--db', join(dir, 'corral.db')], io)).toBe(1);
    expect(lines.at(-1)).toContain('--force');
    expect(await storeCommand(['backup', target, '--db', join(dir, 'corral.db'), '--force'], io)).toBe(0);
    // A backup is restored by putting it in place of store.path: Corral opens it as it is.
    const restored = openDatabase(target);
    expect((await restored.users.findByUsername('alice'))?.role).toBe('admin');
    await restored.close();

    const missing = join(dir, 'nope.db');
    await expect(storeCommand(['backup', join(dir, 'other.db'), '--db', missing], io)).rejects.toThrow();
    expect(existsSync(missing)).toBe(false);
    expect(existsSync(join(dir, 'other.db'))).toBe(false);
    expect(await storeCommand(['backup'], io)).toBe(2);
  });

  it('is a command of the corral program, reading store.path from the config', async () => {
    await store.users.create('bob', 'hash', 'operator');
    const config = join(dir, 'corral.yaml');
    writeFileSync(config, `store:\n  path: ${join(dir, 'corral.db')}\n`);
    const target = join(dir, 'nightly.db');
    const { stdout } = await run(process.execPath, [cli, 'store', 'backup', target, '--config', config], { cwd: dir });
    expect(stdout).toContain(`to ${target}`);
    expect(countUsers(target)).toBe(1);
  });
});
