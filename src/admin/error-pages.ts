import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { CorralError, NotFound } from '../errors.js';
import { isHtmx, type AdminContext } from './context.js';

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Please log in',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  413: 'Too large',
  415: 'Unsupported content',
  429: 'Too many requests',
  501: 'Not available',
  503: 'Unavailable',
  507: 'Not enough room',
};

/** A browser navigating or posting a form; HTMX and scripts get the API's JSON body instead. */
export function wantsPage(request: FastifyRequest): boolean {
  return !isHtmx(request) && (request.headers.accept ?? '').includes('text/html');
}

function statusOf(err: FastifyError & { validation?: unknown }): number {
  if (err instanceof CorralError) return err.status;
  if (err.validation) return 400;
  const code = err.statusCode ?? 500;
  return code >= 400 && code < 600 ? code : 500;
}

/**
 * Errors on admin routes as HTML pages in the layout for browsers, with the same status the API
 * would send; any other caller gets the app's JSON error (the handler rethrows to the parent's).
 * An internal error shows the request id to quote from the log, never the error itself.
 */
export function installAdminErrorPages(admin: FastifyInstance, ctx: AdminContext): void {
  admin.setErrorHandler(async (err: FastifyError, request, reply) => {
    if (!wantsPage(request) || reply.sent) throw err;
    const status = statusOf(err);
    if (status >= 500) request.log.error({ err }, 'admin page failed');
    if (err instanceof CorralError) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    reply.code(status);
    const message =
      status >= 500 && status !== 501 && status !== 503 && status !== 507
        ? `Corral could not finish this request; the log has the details under request id ${request.id}.`
        : err.message;
    return ctx.page(request, reply, 'error', TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'Error'), {
      status,
      message,
      login: status === 401,
    });
  });

  // An unknown admin address is a page of its own for a browser, not the API's JSON 404.
  admin.get('/admin/*', async (request) => {
    throw new NotFound(`there is no admin page at ${request.url.split('?')[0]}`);
  });
}
