import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyServerOptions } from 'fastify';

/**
 * Keys whose values never reach a log line, at any depth a logged object is walked to. Matched by
 * key name rather than pino's `redact` paths: those are re-parsed and walked for every line, which
 * cost more than the rest of the per-request log line together (about 13 KB of garbage per line).
 */
const SECRET_KEYS = new Set([
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'password',
  'token',
  'api_key',
  'apikey',
  'secret',
]);
const CENSOR = '[Redacted]';
const MAX_DEPTH = 4;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of `obj` with secret-named keys censored, in plain objects down to MAX_DEPTH levels. Only
 * what changes is copied, so the common line (no secrets) allocates nothing; the caller's objects are
 * never modified. Class instances (errors, requests) are left to their serializers.
 */
export function redactSecrets(obj: Record<string, unknown>, depth = 0): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key in obj) {
    const value = obj[key];
    const next = value !== undefined && SECRET_KEYS.has(key.toLowerCase()) ? CENSOR : redactValue(value, depth + 1);
    if (next !== value) {
      out ??= { ...obj };
      out[key] = next;
    }
  }
  return out ?? obj;
}

function redactValue(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) return value;
  if (isPlainObject(value)) return redactSecrets(value, depth);
  if (!Array.isArray(value)) return value;
  let out: unknown[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const next = redactValue(value[i], depth + 1);
    if (next !== value[i]) {
      out ??= [...value];
      out[i] = next;
    }
  }
  return out ?? value;
}

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

/** What a request looks like in the log: enough to trace it; credentials show only as present. */
function serializeRequest(req: LoggedRequest): Record<string, unknown> {
  const h = req.headers;
  return {
    method: req.method,
    url: req.url.replace(SECRET_QUERY, '$1[Redacted]'),
    remoteAddress: req.ip,
    headers: {
      'user-agent': h['user-agent'],
      'content-length': h['content-length'],
      authorization: h.authorization === undefined ? undefined : CENSOR,
      cookie: h.cookie === undefined ? undefined : CENSOR,
    },
  };
}

/** Pino options for Fastify: JSON lines, request ids, redaction. `base` (level, stream…) wins where set. */
export function loggerOptions(base: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (!base) return false;
  const extra = base === true ? {} : base;
  return {
    level: 'info',
    // Runs before serializers, on every logged object.
    formatters: { log: redactSecrets },
    serializers: { req: serializeRequest as never },
    ...extra,
  };
}
