import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyServerOptions } from 'fastify';

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'password',
  'token',
  '*.password',
  '*.token',
  '*.api_key',
  '*.apiKey',
  '*.secret',
  '*.*.password',
  '*.*.token',
];

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's x-request-id when it is short and plain (it ends up in logs and headers), else makes one. */
export function requestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && SANE_ID.test(incoming) ? incoming : randomUUID();
}

/** Query parameters that can carry credentials (e.g. an EventSource that cannot send headers). */
const SECRET_QUERY = /([?&](?:token|access_token|api_key|key|password)=)[^&]*/gi;

interface LoggedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  ip: string;
}

/** What a request looks like in the log: enough to trace it, with secrets left to the redact paths. */
function serializeRequest(req: LoggedRequest): Record<string, unknown> {
  const h = req.headers;
  return {
    method: req.method,
    url: req.url.replace(SECRET_QUERY, '$1[Redacted]'),
    remoteAddress: req.ip,
    headers: { 'user-agent': h['user-agent'], 'content-length': h['content-length'], authorization: h.authorization, cookie: h.cookie },
  };
}

/** Pino options for Fastify: JSON lines, request ids, redaction. `base` (level, stream…) wins where set. */
export function loggerOptions(base: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (!base) return false;
  const extra = base === true ? {} : base;
  return {
    level: 'info',
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers: { req: serializeRequest as never },
    ...extra,
  };
}
