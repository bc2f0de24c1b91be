import type { FastifyInstance } from 'fastify';
import { parse as parseQuery } from 'node:querystring';
import { isOpenAiPath } from './error-handler.js';

function isApiPath(url: string): boolean {
  return url.startsWith('/api/') || isOpenAiPath(url);
}

/**
 * Ollama reads every body as JSON whatever its Content-Type — `curl -d '{...}'` sends
 * application/x-www-form-urlencoded — so API routes parse any body as JSON. Everything else
 * (the admin UI's forms) gets urlencoded parsing.
 */
export function installBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    const type = String(request.headers['content-type'] ?? '');
    if (!isApiPath(request.url) && type.startsWith('application/x-www-form-urlencoded')) {
      done(null, parseQuery(text));
      return;
    }
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      const e = err as Error & { statusCode?: number; code?: string };
      e.statusCode = 400;
      e.code = 'FST_ERR_CTP_INVALID_JSON_BODY';
      done(e, undefined);
    }
  });
}
