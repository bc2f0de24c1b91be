import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Store } from './store.js';

const DAY_MS = 86_400_000;

/** Deletes log rows older than their configured retention; the caller decides how often. */
export async function pruneLogs(store: Store, config: Config['store'], now = Date.now()) {
  const requestMs = parseDuration(config.request_log_retention);
  const auditMs = parseDuration(config.audit_log_retention);
  await store.flush();
  return {
    requestLog: Number.isFinite(requestMs) ? await store.requestLog.pruneBefore(now - requestMs) : 0,
    auditLog: Number.isFinite(auditMs) ? await store.auditLog.pruneBefore(now - auditMs) : 0,
    // Usage older than a day no longer counts against any limit; keep as long as the request log.
    tokenUsage: Number.isFinite(requestMs) ? await store.tokenUsage.pruneBefore(now - requestMs) : 0,
    sessions: await store.sessions.pruneBefore(now - DAY_MS),
    // Resolved alerts are part of the operational record: kept as long as the audit log.
    alertHistory: Number.isFinite(auditMs) ? await store.alertHistory.pruneBefore(now - auditMs) : 0,
    // A bucket unused for a week has refilled under any limit's window.
    rateLimits: await store.rateLimits.pruneBefore(now - 7 * DAY_MS),
  };
}
