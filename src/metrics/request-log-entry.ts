import { ROUTE_RULES, ruleFor } from '../auth/roles.js';
import type { RequestLogEntry } from '../store/request-log.js';
import type { RequestRecord } from './request-hooks.js';

/**
 * The request log row of a finished request, or undefined when it is not one the log keeps. Every
 * request to an inference route is kept, whatever its outcome (refused before its body was read with
 * 401 or 429, turned away with 503, cancelled, failed), and so is any request that leased a model.
 */
export function requestLogEntry(r: RequestRecord): RequestLogEntry | undefined {
  const inference = ruleFor(ROUTE_RULES, r.method, r.route)?.keepAlive === true;
  if (!inference && r.model === undefined) return undefined;
  const principal = r.request.principal;
  return {
    principal: principal?.name ?? 'anonymous',
    tokenId: principal?.tokenId ?? null,
    userId: principal?.userId ?? null,
    model: r.requestedModel ?? null,
    endpoint: r.route,
    status: r.status,
    promptTokens: r.promptTokens ?? null,
    evalTokens: r.generatedTokens ?? null,
    loadMs: r.loadDurationMs ?? null,
    ttftMs: r.ttftMs ?? null,
    queueWaitMs: r.queueWaitMs ?? null,
    totalMs: r.durationMs,
    requestId: r.id,
    at: r.at.getTime(),
  };
}
