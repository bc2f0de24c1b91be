import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CorralError, ModelNotFound } from '../errors.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "body/options/temperature must be number" → 'invalid value for "options.temperature": must be number'. */
export function describeValidation(errors: AjvError[]): string {
  const e = errors[0];
  if (!e) return 'invalid request body';
  const field = e.instancePath.split('/').filter(Boolean).join('.');
  if (e.keyword === 'required') {
    const missing = String(e.params.missingProperty ?? '');
    return `missing required field "${field ? `${field}.` : ''}${missing}"`;
  }
  return `invalid value for "${field || 'body'}": ${e.message ?? 'invalid'}`;
}

/** llama-server's own endpoints, which Corral routes by model like the /v1 ones. */
const LLAMA_PATHS = /^\/(infill|tokenize|detokenize|apply-template|rerank|reranking)(\?|$)/;

/** Paths whose errors take OpenAI's shape: /v1, and llama-server's own endpoints (which answer in it too). */
export function isOpenAiPath(url: string): boolean {
  return url.startsWith('/v1/') || url === '/v1' || LLAMA_PATHS.test(url);
}

/** Renders an error in the shape the caller's API speaks: Ollama `{"error"}` or OpenAI `{"error":{...}}`. */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: string,
  type = 'server_error',
  headers: Record<string, string> = {},
  code: string | null = null,
): FastifyReply {
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  reply.code(status);
  if (isOpenAiPath(request.url)) return reply.send({ error: { message, type, code } });
  return reply.send({ error: message });
}

/** Maps every error to a status and body in one place (design: "Errors"). */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError & { validation?: AjvError[] }, request, reply) => {
    if (err instanceof CorralError) {
      if (err.status >= 500) request.log.warn({ err: err.message }, 'request failed');
      // OpenAI's code for an unknown model; other 404s (an unknown path) carry none.
      const code = err instanceof ModelNotFound ? 'model_not_found' : null;
      return sendError(request, reply, err.status, err.message, err.type, err.headers, code);
    }
    if (err.validation) {
      return sendError(request, reply, 400, describeValidation(err.validation), 'invalid_request_error');
    }
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return sendError(request, reply, 400, `invalid JSON body: ${err.message}`, 'invalid_request_error');
    }
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(request, reply, 400, 'missing request body', 'invalid_request_error');
    }
    if (err.statusCode && err.statusCode < 500) {
      return sendError(request, reply, err.statusCode, err.message, 'invalid_request_error');
    }
    request.log.error({ err }, 'unhandled error');
    return sendError(request, reply, 500, err.message || 'internal error');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, 404, `${request.method} ${request.url.split('?')[0]} not found`, 'not_found_error'),
  );
}
