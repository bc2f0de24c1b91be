import type { Principal } from '../auth/principal.js';
import type { RequestLogRepo } from '../store/request-log.js';
import type { RequestRecord } from './request-hooks.js';

/**
 * The request log's row for a finished request, and the token usage it charges. Only inference
 * requests (those that named a model) are logged and counted.
 */
export function requestLogWriter(
  log: Pick<RequestLogRepo, 'write'>,
  recordTokenUsage: (principal: Principal | null | undefined, tokens: number) => void,
): (r: RequestRecord) => void {
  return (r) => {
    if (r.model === undefined) return;
    const principal = r.request.principal;
    log.write({
      principal: principal?.name ?? 'anonymous',
      tokenId: principal?.tokenId ?? null,
      userId: principal?.userId ?? null,
      model: r.model,
      endpoint: r.route,
      status: r.status,
      promptTokens: r.promptTokens ?? null,
      evalTokens: r.generatedTokens ?? null,
      loadMs: r.loadDurationMs ?? null,
      ttftMs: r.ttftMs ?? null,
      totalMs: r.durationMs,
      requestId: r.id,
      at: r.at.getTime(),
    });
    const used = (r.promptTokens ?? 0) + (r.generatedTokens ?? 0);
    if (used > 0) recordTokenUsage(principal, used);
  };
}
