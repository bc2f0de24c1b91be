import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';

/**
 * The login page. POST /admin/login and /admin/logout (credential check, throttling, sessions)
 * belong to the auth module; the form posts there.
 */
export function registerLoginRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/admin/login', async (request, reply) => {
    // Already logged in (a bookmark, the back button): the login form has nothing to offer.
    if (request.principal?.kind === 'user') return reply.redirect('/admin', 303);
    const q = request.query as Record<string, unknown>;
    const errors: Record<string, string> = {
      invalid: 'Wrong username or password.',
      throttled: 'Too many attempts; wait a minute and try again.',
      csrf: 'The form expired; please try again.',
    };
    return ctx.page(request, reply, 'login', 'Log in', {
      error: typeof q.error === 'string' ? (errors[q.error] ?? errors.invalid) : undefined,
      username: typeof q.username === 'string' ? q.username : '',
    });
  });

  // The one-time URL printed at first start lands here; the form posts to the auth module's
  // POST /admin/setup, which checks and consumes the token.
  app.get('/admin/setup', async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    return ctx.page(request, reply, 'setup', 'First-time setup', { token: typeof q.token === 'string' ? q.token : '' });
  });
}
