import type Database from 'better-sqlite3';

export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  ip?: string | null;
  detail?: string | null;
}

export interface AuditRow extends Required<AuditEntry> {
  id: number;
  at: number;
}

/** Written synchronously: an audit trail that can lose entries on a crash is not much of one. */
export function createAuditLogRepo(db: Database.Database) {
  const insert = db.prepare(`INSERT INTO audit_log (at, actor, action, target, outcome, ip, detail)
    VALUES (?, ?, ?, ?, ?, ?, ?)`);
  const recent = db.prepare(`SELECT * FROM audit_log
    WHERE (@actor IS NULL OR actor = @actor) AND (@action IS NULL OR action = @action)
    ORDER BY id DESC LIMIT @limit`);
  const prune = db.prepare('DELETE FROM audit_log WHERE at < ?');
  return {
    write(e: AuditEntry, now = Date.now()) {
      insert.run(now, e.actor, e.action, e.target ?? null, e.outcome, e.ip ?? null, e.detail ?? null);
    },
    recent: (q: { actor?: string; action?: string; limit?: number } = {}) =>
      recent.all({ actor: q.actor ?? null, action: q.action ?? null, limit: q.limit ?? 100 }) as AuditRow[],
    pruneBefore: (ms: number) => prune.run(ms).changes,
  };
}

export type AuditLogRepo = ReturnType<typeof createAuditLogRepo>;
