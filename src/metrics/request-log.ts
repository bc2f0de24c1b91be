import type { Principal } from '../auth/principal.js';
import type { RequestLogRepo } from '../store/request-log.js';
import type { RequestRecord } from './request-hooks.js';
import { requestLogEntry } from './request-log-entry.js';

/** Writes a finished request's row (see requestLogEntry) and charges the tokens it used. */
export function requestLogWriter(
  log: Pick<RequestLogRepo, 'write'>,
  recordTokenUsage: (principal: Principal | null | undefined, tokens: number) => void,
): (r: RequestRecord) => void {
  return (r) => {
    const entry = requestLogEntry(r);
    if (!entry) return;
    log.write(entry);
    const used = (r.promptTokens ?? 0) + (r.generatedTokens ?? 0);
    if (used > 0) recordTokenUsage(r.request.principal, used);
  };
}
