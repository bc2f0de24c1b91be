import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse as parseQuery } from 'node:querystring';
import { isOpenAiPath } from './error-handler.js';
import { jsonDepthExceeds } from './json-depth.js';
import { parseJsonBody } from './json-text.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body as received; kept only where requests may be forwarded (a fleet). */
    rawBody?: string | undefined;
  }
}

function isApiPath(url: string): boolean {
  return url.startsWith('/api/') || isOpenAiPath(url);
}

/**
 * Ollama reads every body as JSON whatever its Content-Type — `curl -d '{...}'` sends
 * application/x-www-form-urlencoded — so API routes parse any body as JSON. Everything else
 * (the admin UI's forms) gets urlencoded parsing.
 */
export function installBodyParsers(app: FastifyInstance, opts: { maxDepth?: number; keepRaw?: boolean } = {}): void {
  const maxDepth = opts.maxDepth ?? 64;
  app.removeAllContentTypeParsers();
  // A fleet forwards API bodies to other nodes as the client sent them.
  const keepRaw = opts.keepRaw === true;
  if (keepRaw) app.decorateRequest('rawBody', undefined);
  const parse = (
    request: FastifyRequest,
    body: string | Buffer,
    done: (err: Error | null, body?: unknown) => void,
  ): void => {
    const text = body as string;
    if (keepRaw) request.rawBody = text;
    const type = String(request.headers['content-type'] ?? '');
    if (!isApiPath(request.url) && type.startsWith('application/x-www-form-urlencoded')) {
      done(null, parseQuery(text));
      return;
    }
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    if (jsonDepthExceeds(text, maxDepth)) {
      const e = Object.assign(new Error(`JSON body nested deeper than ${maxDepth} levels`), { statusCode: 400 });
      done(e, undefined);
      return;
    }
    try {
      done(null, parseJsonBody(text));
    } catch (err) {
      const e = err as Error & { statusCode?: number; code?: string };
      e.statusCode = 400;
      e.code = 'FST_ERR_CTP_INVALID_JSON_BODY';
      done(e, undefined);
    }
  };
  // Registered by name too, so no later plugin (e.g. formbody) claims urlencoded bodies on API paths.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parse);
  app.addContentTypeParser('*', { parseAs: 'string' }, parse);
}
