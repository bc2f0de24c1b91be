import type Database from 'better-sqlite3';

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertEpisode {
  id: number;
  rule: string;
  /** What the alert is about: a model name, a token, a directory; "" for Corral as a whole. */
  subject: string;
  severity: Severity;
  summary: string;
  startedAt: number;
  /** Undefined while the alert fires. */
  resolvedAt: number | undefined;
  /** Whether a firing notification went out (cooldown may hold one back). */
  notified: boolean;
}

interface Row {
  id: number;
  rule: string;
  subject: string;
  severity: Severity;
  summary: string;
  started_at: number;
  resolved_at: number | null;
  notified: number;
}

const episode = (r: Row): AlertEpisode => ({
  id: r.id,
  rule: r.rule,
  subject: r.subject,
  severity: r.severity,
  summary: r.summary,
  startedAt: r.started_at,
  resolvedAt: r.resolved_at ?? undefined,
  notified: r.notified === 1,
});

/** One row per firing episode of an alert: opened when it fires, closed when it resolves. */
export function createAlertHistoryRepo(db: Database.Database) {
  const open = db.prepare(`INSERT INTO alert_history (rule, subject, severity, summary, started_at, notified)
    VALUES (?, ?, ?, ?, ?, ?)`);
  const close = db.prepare('UPDATE alert_history SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL');
  const firing = db.prepare('SELECT * FROM alert_history WHERE resolved_at IS NULL ORDER BY started_at');
  const recent = db.prepare('SELECT * FROM alert_history ORDER BY started_at DESC, id DESC LIMIT ?');
  const lastNotified = db.prepare(
    'SELECT MAX(started_at) AS at FROM alert_history WHERE rule = ? AND subject = ? AND notified = 1',
  );
  const prune = db.prepare('DELETE FROM alert_history WHERE resolved_at IS NOT NULL AND resolved_at < ?');
  return {
    open(e: Omit<AlertEpisode, 'id' | 'resolvedAt'>): AlertEpisode {
      const id = Number(
        open.run(e.rule, e.subject, e.severity, e.summary, e.startedAt, e.notified ? 1 : 0).lastInsertRowid,
      );
      return { ...e, id, resolvedAt: undefined };
    },
    resolve: (id: number, at: number): void => void close.run(at, id),
    firing: (): AlertEpisode[] => (firing.all() as Row[]).map(episode),
    recent: (limit = 200): AlertEpisode[] => (recent.all(limit) as Row[]).map(episode),
    /** When this alert last fired with a notification: the cooldown counts from there. */
    lastNotifiedAt: (rule: string, subject: string): number | undefined =>
      (lastNotified.get(rule, subject) as { at: number | null }).at ?? undefined,
    pruneBefore: (ms: number) => prune.run(ms).changes,
  };
}

export type AlertHistoryRepo = ReturnType<typeof createAlertHistoryRepo>;
