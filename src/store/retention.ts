import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Store } from './database.js';

/** Deletes log rows older than their configured retention; the caller decides how often. */
export function pruneLogs(store: Store, config: Config['store'], now = Date.now()) {
  const requestMs = parseDuration(config.request_log_retention);
  const auditMs = parseDuration(config.audit_log_retention);
  store.flush();
  return {
    requestLog: Number.isFinite(requestMs) ? store.requestLog.pruneBefore(now - requestMs) : 0,
    auditLog: Number.isFinite(auditMs) ? store.auditLog.pruneBefore(now - auditMs) : 0,
    // Usage older than a day no longer counts against any limit; keep as long as the request log.
    tokenUsage: Number.isFinite(requestMs) ? store.tokenUsage.pruneBefore(now - requestMs) : 0,
    sessions: store.sessions.pruneBefore(now - 86_400_000),
    // Resolved alerts are part of the operational record: kept as long as the audit log.
    alertHistory: Number.isFinite(auditMs) ? store.alertHistory.pruneBefore(now - auditMs) : 0,
  };
}
