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
  model?: string;
  ttftMs?: number;
  queueWaitMs?: number;
  loadDurationMs?: number;
  promptTokens?: number;
  generatedTokens?: number;
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
  app.addHook('onRequest', (request, _reply, done) => {
    stats.set(request, { start: process.hrtime.bigint() });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const s = stats.get(request);
    if (s) {
      const route = request.routeOptions.url ?? 'unmatched';
      if (s.model === undefined && reply.statusCode >= 400) s.model = modelOf?.(request);
      const model = s.model ?? '';
      const durationMs = msSince(s.start);
      metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode), model });
      metrics.requestDuration.observe({ route, method: request.method, model }, durationMs / 1000);
      if (s.ttftMs !== undefined) metrics.timeToFirstToken.observe({ route, model }, s.ttftMs / 1000);
      if (onFinished) {
        try {
          onFinished({
            id: request.id,
            at: new Date(Date.now() - durationMs),
            method: request.method,
            route,
            status: reply.statusCode,
            model: s.model,
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
      }
    }
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
