import type { SqlDb } from './sql.js';

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
export function createAlertHistoryRepo(db: SqlDb) {
  return {
    async open(e: Omit<AlertEpisode, 'id' | 'resolvedAt'>): Promise<AlertEpisode> {
      const row = await db.get<{ id: number }>(
        `INSERT INTO alert_history (rule, subject, severity, summary, started_at, notified)
        VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
        [e.rule, e.subject, e.severity, e.summary, e.startedAt, e.notified ? 1 : 0],
      );
      return { ...e, id: row!.id, resolvedAt: undefined };
    },
    async resolve(id: number, at: number): Promise<void> {
      await db.run('UPDATE alert_history SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL', [at, id]);
    },
    firing: async (): Promise<AlertEpisode[]> =>
      (await db.all<Row>('SELECT * FROM alert_history WHERE resolved_at IS NULL ORDER BY started_at')).map(episode),
    recent: async (limit = 200): Promise<AlertEpisode[]> =>
      (await db.all<Row>('SELECT * FROM alert_history ORDER BY started_at DESC, id DESC LIMIT ?', [limit])).map(
        episode,
      ),
    /** When this alert last fired with a notification: the cooldown counts from there. */
    lastNotifiedAt: async (rule: string, subject: string): Promise<number | undefined> =>
      (
        await db.get<{ at: number | null }>(
          'SELECT MAX(started_at) AS at FROM alert_history WHERE rule = ? AND subject = ? AND notified = 1',
          [rule, subject],
        )
      )?.at ?? undefined,
    pruneBefore: (ms: number) =>
      db.run('DELETE FROM alert_history WHERE resolved_at IS NOT NULL AND resolved_at < ?', [ms]),
  };
}

export type AlertHistoryRepo = ReturnType<typeof createAlertHistoryRepo>;
