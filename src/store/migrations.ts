import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Append-only: a released migration is never edited, because databases in the field have already
 * recorded its version as applied. Change the schema by adding a new entry, here and in
 * postgres/migrations.ts: one set of repositories reads both engines.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'identities',
    sql: `
      CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        models TEXT,
        rpm INTEGER,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        created_by TEXT,
        last_used_at INTEGER,
        revoked_at INTEGER
      );
      CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        ip TEXT,
        user_agent TEXT
      );
      CREATE INDEX sessions_user ON sessions(user_id);
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    version: 2,
    name: 'logs',
    sql: `
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        outcome TEXT NOT NULL,
        ip TEXT,
        detail TEXT
      );
      CREATE INDEX audit_log_at ON audit_log(at);
      CREATE TABLE request_log (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        token_id INTEGER,
        user_id INTEGER,
        principal TEXT NOT NULL,
        model TEXT,
        endpoint TEXT NOT NULL,
        status INTEGER NOT NULL,
        prompt_tokens INTEGER,
        eval_tokens INTEGER,
        load_ms REAL,
        ttft_ms REAL,
        total_ms REAL
      );
      CREATE INDEX request_log_at ON request_log(at);
      CREATE INDEX request_log_model_at ON request_log(model, at);
    `,
  },
  {
    version: 3,
    name: 'daily token limits and setup tokens',
    sql: `
      ALTER TABLE api_tokens ADD COLUMN tpd INTEGER;
      CREATE TABLE token_usage (
        token_id INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        PRIMARY KEY (token_id, day)
      );
      CREATE TABLE setup_tokens (
        token_hash TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
      );
    `,
  },
  {
    version: 4,
    name: 'request ids in the request log',
    sql: `ALTER TABLE request_log ADD COLUMN request_id TEXT;`,
  },
  {
    version: 5,
    name: 'disabled users',
    sql: `ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    version: 6,
    name: 'api token prefixes',
    // The first characters of the secret, so a token in a client's config can be matched to its row.
    sql: `ALTER TABLE api_tokens ADD COLUMN prefix TEXT;`,
  },
  {
    version: 7,
    name: 'alert history, playground conversations, queue wait in the request log',
    sql: `
      ALTER TABLE request_log ADD COLUMN queue_wait_ms REAL;
      CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL,
        summary TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        resolved_at INTEGER,
        notified INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX alert_history_started ON alert_history(started_at);
      CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        title TEXT NOT NULL,
        model TEXT NOT NULL,
        system TEXT NOT NULL DEFAULT '',
        options TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX conversations_owner ON conversations(owner, updated_at);
      CREATE TABLE conversation_messages (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        images TEXT,
        PRIMARY KEY (conversation_id, seq)
      );
    `,
  },
];

/** Applies, in order and each in its own transaction, the migrations newer than the recorded version. */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
  now = Date.now(),
): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  const applied: number[] = [];
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, now);
    })();
    applied.push(m.version);
  }
  return applied;
}

export function schemaVersion(db: Database.Database): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}
