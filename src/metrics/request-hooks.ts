import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiObserver } from '../api/deps.js';
import type { CorralMetrics } from './registry.js';

/** One finished request, as the request log stores it. */
export interface RequestRecord {
  id: string;
  at: Date;
  method: string;
  route: string;
  status: number;
  model: string | undefined;
  /** The model asked for: `model` once leased, else the body's `model` (a request refused before its lease). */
  requestedModel: string | undefined;
  durationMs: number;
  ttftMs: number | undefined;
  queueWaitMs: number | undefined;
  loadDurationMs: number | undefined;
  promptTokens: number | undefined;
  generatedTokens: number | undefined;
  request: FastifyRequest;
}

interface Stats {
  start: bigint;
  finished?: boolean;
  model?: string;
  ttftMs?: number;
  queueWaitMs?: number;
  loadDurationMs?: number;
  promptTokens?: number;
  generatedTokens?: number;
}

/** Status recorded for a request whose client disconnected before the response was complete. */
export const CLIENT_CLOSED = 499;

/** The `model` field of a parsed JSON body, if any (bounded: it ends up in the request log). */
function requestedModel(body: unknown): string | undefined {
  const m = body && typeof body === 'object' ? (body as Record<string, unknown>).model : undefined;
  return typeof m === 'string' && m !== '' ? m.slice(0, 300) : undefined;
}

const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/**
 * Times every request and counts it by route, status and model; returns the observer the API
 * routes call for what only they see (model, first token, token usage). `onFinished` receives one
 * record per request for the request log.
 */
export function installRequestMetrics(
  app: FastifyInstance,
  metrics: CorralMetrics,
  onFinished?: (record: RequestRecord) => void,
  /** The model a request was for when it failed before a slot was leased (e.g. 503 queue full). */
  modelOf?: (request: FastifyRequest) => string | undefined,
): ApiObserver {
  // Keyed by request object: nothing is added to Fastify's request shape and entries die with it.
  const stats = new WeakMap<FastifyRequest, Stats>();
  app.addHook('onRequest', (request, reply, done) => {
    stats.set(request, { start: process.hrtime.bigint() });
    // The client went away before the answer was complete (a stopped stream, a closed tab): recorded
    // as 499, nginx's "client closed request", so cancellations show in metrics and the request log.
    // (Fastify's onRequestAbort covers only a body still being uploaded.)
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) finish(request, CLIENT_CLOSED);
    });
    done();
  });
  /** Counts and logs a request once, whether it finished or its client went away. */
  const finish = (request: FastifyRequest, status: number): void => {
    const s = stats.get(request);
    if (!s || s.finished) return;
    s.finished = true;
    if (s.model === undefined && status >= 400) s.model = modelOf?.(request);
    const route = request.routeOptions.url ?? 'unmatched';
    const model = s.model ?? '';
    const durationMs = msSince(s.start);
    metrics.requests.inc({ route, method: request.method, status: String(status), model });
    metrics.requestDuration.observe({ route, method: request.method, model }, durationMs / 1000);
    if (s.ttftMs !== undefined) metrics.timeToFirstToken.observe({ route, model }, s.ttftMs / 1000);
    if (!onFinished) return;
    try {
      onFinished({
        id: request.id,
        at: new Date(Date.now() - durationMs),
        method: request.method,
        route,
        status,
        model: s.model,
        requestedModel: s.model ?? requestedModel(request.body),
        durationMs,
        ttftMs: s.ttftMs,
        queueWaitMs: s.queueWaitMs,
        loadDurationMs: s.loadDurationMs,
        promptTokens: s.promptTokens,
        generatedTokens: s.generatedTokens,
        request,
      });
    } catch (err) {
      request.log.warn({ err }, 'request log write failed');
    }
  };
  app.addHook('onResponse', (request, reply, done) => {
    finish(request, reply.statusCode);
    done();
  });
  return {
    leased(request, model, lease) {
      const s = stats.get(request);
      if (!s) return;
      s.model = model;
      s.queueWaitMs = lease.queueWaitMs;
      s.loadDurationMs = lease.loadDurationMs;
      metrics.queueWait.observe({ model }, lease.queueWaitMs / 1000);
    },
    firstToken(request) {
      const s = stats.get(request);
      if (s && s.ttftMs === undefined) s.ttftMs = msSince(s.start);
    },
    usage(request, promptTokens, generatedTokens) {
      const s = stats.get(request);
      if (!s) return;
      s.promptTokens = promptTokens;
      s.generatedTokens = generatedTokens;
      const model = s.model ?? '';
      metrics.promptTokens.inc({ model }, promptTokens);
      metrics.generatedTokens.inc({ model }, generatedTokens);
    },
  };
}
