import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from '../auth-adapter.js';
import type { AdminContext } from '../context.js';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];

function field(request: FastifyRequest, name: string): string {
  const v = (request.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v.trim() : '';
}

/**
 * Tokens and users. The data comes from the accounts store (branch `auth`); without one the pages
 * render an "accounts store not available" notice and the actions answer 501.
 */
export function registerAccountRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const store = () => ctx.deps.accounts;
  const bad = (reply: FastifyReply, msg: string) => reply.code(400).type('text/plain; charset=utf-8').send(msg);
  const noStore = (reply: FastifyReply) =>
    reply.code(501).type('text/plain; charset=utf-8').send('accounts store not available');

  const tokensPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    created?: { name: string; secret: string },
    error?: string,
  ) => {
    const s = store();
    return ctx.page(request, reply, 'tokens', 'API tokens', {
      available: Boolean(s),
      tokens: s ? await s.listTokens() : [],
      created,
      error,
      roles: ROLES,
    });
  };
  const usersPage = async (request: FastifyRequest, reply: FastifyReply, error?: string) => {
    const s = store();
    return ctx.page(request, reply, 'users', 'Users', {
      available: Boolean(s),
      users: s ? await s.listUsers() : [],
      roles: ROLES,
      error,
      canDisable: Boolean(s?.setUserDisabled),
      canDelete: Boolean(s?.deleteUser),
    });
  };
  /** The store rejects bad input with typed errors (status < 500): show them on the page, not as JSON. */
  const orPage = async (
    reply: FastifyReply,
    work: () => Promise<unknown>,
    page: (error: string) => Promise<FastifyReply>,
  ): Promise<FastifyReply | undefined> => {
    try {
      await work();
      return undefined;
    } catch (err) {
      const status =
        (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode ?? 500;
      if (status >= 500) throw err;
      reply.code(status);
      return page((err as Error).message);
    }
  };

  app.get('/admin/tokens', { config: { auth: { role: 'operator' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'operator')) return reply;
    return tokensPage(request, reply);
  });

  app.post('/admin/tokens', { config: { auth: { role: 'operator' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'operator', { csrf: true })) return reply;
    const s = store();
    if (!s) return noStore(reply);
    const name = field(request, 'name');
    const role = field(request, 'role') as Role;
    if (!name || name.length > 100) return bad(reply, 'a token needs a name (at most 100 characters)');
    if (!ROLES.includes(role)) return bad(reply, 'unknown role');
    const user = ctx.auth.currentUser(request);
    // Nobody hands out more power than they hold.
    if (user && ROLES.indexOf(role) > ROLES.indexOf(user.role))
      return reply
        .code(403)
        .type('text/plain; charset=utf-8')
        .send('cannot create a token with a higher role than your own');
    let secret = '';
    const failed = await orPage(
      reply,
      async () => ({ secret } = await s.createToken({ name, role, createdBy: user?.name })),
      (e) => tokensPage(request, reply, undefined, e),
    );
    if (failed) return failed;
    // The secret is shown in this response only (no redirect: it must never land in a URL or history).
    return tokensPage(request, reply, { name, secret });
  });

  app.post('/admin/tokens/revoke', { config: { auth: { role: 'operator' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'operator', { csrf: true })) return reply;
    const s = store();
    if (!s) return noStore(reply);
    const id = field(request, 'id');
    if (!id) return bad(reply, 'missing token id');
    await s.revokeToken(id);
    return reply.redirect('/admin/tokens', 303);
  });

  app.get('/admin/users', { config: { auth: { role: 'admin' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'admin')) return reply;
    return usersPage(request, reply);
  });

  app.post('/admin/users/:op', { config: { auth: { role: 'admin' } } }, async (request, reply) => {
    if (!ctx.allow(request, reply, 'admin', { csrf: true })) return reply;
    const s = store();
    if (!s) return noStore(reply);
    const op = (request.params as { op: string }).op;
    const id = field(request, 'id');
    const role = field(request, 'role');
    const password = field(request, 'password');
    const actor = ctx.auth.currentUser(request)?.name;
    let work: (() => Promise<unknown>) | undefined;
    if (op === 'create') {
      const username = field(request, 'username');
      if (!username || !ROLES.includes(role as Role)) return bad(reply, 'a user needs a name and a valid role');
      if (password.length < 8) return bad(reply, 'passwords need at least 8 characters');
      work = async () => s.createUser({ username, password, role, actor });
    } else if (!id) {
      return bad(reply, 'missing user id');
    } else if (op === 'role') {
      if (!ROLES.includes(role as Role)) return bad(reply, 'unknown role');
      work = async () => s.setUserRole(id, role);
    } else if (op === 'password') {
      if (password.length < 8) return bad(reply, 'passwords need at least 8 characters');
      work = async () => s.resetPassword(id, password);
    } else if ((op === 'disable' || op === 'enable') && s.setUserDisabled) {
      work = async () => s.setUserDisabled?.(id, op === 'disable');
    } else if (op === 'delete' && s.deleteUser) {
      work = async () => s.deleteUser?.(id);
    }
    if (!work) return reply.code(404).type('text/plain; charset=utf-8').send('unknown operation');
    const failed = await orPage(reply, work, (e) => usersPage(request, reply, e));
    if (failed) return failed;
    return reply.redirect('/admin/users', 303);
  });
}
