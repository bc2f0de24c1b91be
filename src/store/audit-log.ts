import { type SqlDb, whereGiven } from './sql.js';

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

/** Written at once, not deferred: an audit trail that can lose entries on a crash is not much of one. */
export function createAuditLogRepo(db: SqlDb) {
  return {
    async write(e: AuditEntry, now = Date.now()): Promise<void> {
      await db.run(
        'INSERT INTO audit_log (at, actor, action, target, outcome, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [now, e.actor, e.action, e.target ?? null, e.outcome, e.ip ?? null, e.detail ?? null],
      );
    },
    recent(q: { actor?: string; action?: string; limit?: number } = {}): Promise<AuditRow[]> {
      const filter = whereGiven({ 'actor = ?': q.actor, 'action = ?': q.action });
      return db.all<AuditRow>(`SELECT * FROM audit_log ${filter.sql} ORDER BY id DESC LIMIT ?`, [
        ...filter.params,
        q.limit ?? 100,
      ]);
    },
    pruneBefore: (ms: number) => db.run('DELETE FROM audit_log WHERE at < ?', [ms]),
  };
}

export type AuditLogRepo = ReturnType<typeof createAuditLogRepo>;
