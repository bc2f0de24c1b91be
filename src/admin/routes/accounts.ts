import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isRole, ROLES, roleAllows } from '../../auth/principal.js';
import { createApiToken } from '../../auth/tokens.js';
import type { AdminContext } from '../context.js';

function field(request: FastifyRequest, name: string): string {
  const v = (request.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v.trim() : '';
}

const fmt = (ms: number | null) => (ms === null ? undefined : new Date(ms));

/** Tokens and users, straight from the store and the accounts module (which audits each change). */
export function registerAccountRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { store, accounts } = ctx.deps;
  const bad = (reply: FastifyReply, msg: string) => reply.code(400).type('text/plain; charset=utf-8').send(msg);

  const tokensPage = (
    request: FastifyRequest,
    reply: FastifyReply,
    created?: { name: string; secret: string },
    error?: string,
  ) => {
    const now = Date.now();
    const tokens = store.apiTokens.list().map((t) => ({
      id: t.id,
      name: t.name,
      role: t.role,
      owner: t.created_by ?? undefined,
      createdAt: new Date(t.created_at),
      lastUsedAt: fmt(t.last_used_at),
      revoked: t.revoked_at !== null || (t.expires_at !== null && t.expires_at <= now),
    }));
    return ctx.page(request, reply, 'tokens', 'API tokens', { tokens, created, error, roles: ROLES });
  };
  // The username is the id in the forms: accounts.ts addresses users by name.
  const usersPage = (request: FastifyRequest, reply: FastifyReply, error?: string) => {
    const users = accounts.list().map((u) => ({
      id: u.username,
      username: u.username,
      role: u.role,
      disabled: Boolean(u.disabled),
      createdAt: new Date(u.created_at),
    }));
    return ctx.page(request, reply, 'users', 'Users', { users, roles: ROLES, error });
  };
  /** Accounts reject bad input with typed errors (status < 500): show them on the page, not as JSON. */
  const orPage = async (
    reply: FastifyReply,
    work: () => Promise<unknown>,
    page: (error: string) => Promise<FastifyReply>,
  ): Promise<FastifyReply | undefined> => {
    try {
      await work();
      return undefined;
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) throw err;
      reply.code(status);
      return page((err as Error).message);
    }
  };

  app.get('/admin/tokens', (request, reply) => tokensPage(request, reply));

  app.post('/admin/tokens', async (request, reply) => {
    const name = field(request, 'name');
    const role = field(request, 'role');
    if (!name || name.length > 100) return bad(reply, 'a token needs a name (at most 100 characters)');
    if (!isRole(role)) return bad(reply, 'unknown role');
    const user = request.principal;
    // Nobody hands out more power than they hold.
    if (!user || !roleAllows(user.role, role))
      return reply
        .code(403)
        .type('text/plain; charset=utf-8')
        .send('cannot create a token with a higher role than your own');
    const token = createApiToken(store, { name, role, createdBy: user.name });
    request.auditTarget = `${token.id} ${name}`;
    // The secret is shown in this response only (no redirect: it must never land in a URL or history).
    return tokensPage(request, reply, { name, secret: token.secret });
  });

  app.post('/admin/tokens/revoke', async (request, reply) => {
    const id = Number(field(request, 'id'));
    if (!Number.isInteger(id) || id <= 0) return bad(reply, 'missing token id');
    request.auditTarget = String(id);
    store.apiTokens.revoke(id);
    return reply.redirect('/admin/tokens', 303);
  });

  app.get('/admin/users', (request, reply) => usersPage(request, reply));

  app.post<{ Params: { op: string } }>('/admin/users/:op', async (request, reply) => {
    const { op } = request.params;
    const id = field(request, 'id');
    const role = field(request, 'role');
    const password = field(request, 'password');
    const actor = request.principal?.name;
    let work: (() => Promise<unknown>) | undefined;
    if (op === 'create') {
      const username = field(request, 'username');
      if (!username || !isRole(role)) return bad(reply, 'a user needs a name and a valid role');
      work = () => accounts.addUser(username, password, role, actor);
    } else if (!id) {
      return bad(reply, 'missing user id');
    } else if (op === 'role') {
      if (!isRole(role)) return bad(reply, 'unknown role');
      work = async () => accounts.setRole(id, role, actor);
    } else if (op === 'password') {
      work = () => accounts.setPassword(id, password, actor);
    } else if (op === 'disable' || op === 'enable') {
      work = async () => accounts.setDisabled(id, op === 'disable', actor);
    } else if (op === 'delete') {
      work = async () => accounts.deleteUser(id, actor);
    }
    if (!work) return reply.code(404).type('text/plain; charset=utf-8').send('unknown operation');
    request.auditTarget = `${op} ${id || field(request, 'username')}`;
    const failed = await orPage(reply, work, (e) => usersPage(request, reply, e));
    if (failed) return failed;
    return reply.redirect('/admin/users', 303);
  });
}
