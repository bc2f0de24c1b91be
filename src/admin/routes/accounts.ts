import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isRole, ROLES } from '../../auth/principal.js';
import { BadRequest, NotFound } from '../../errors.js';
import { formField, type AdminContext } from '../context.js';

/** Users, straight from the accounts module (which audits each change). */
export function registerAccountRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { accounts } = ctx.deps;

  // The username is the id in the forms: accounts.ts addresses users by name.
  const usersPage = async (request: FastifyRequest, reply: FastifyReply, error?: string) => {
    const users = (await accounts.list()).map((u) => ({
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

  app.get('/admin/users', (request, reply) => usersPage(request, reply));

  app.post<{ Params: { op: string } }>('/admin/users/:op', async (request, reply) => {
    const { op } = request.params;
    const id = formField(request, 'id');
    const role = formField(request, 'role');
    const password = formField(request, 'password');
    const actor = request.principal?.name;
    let work: (() => Promise<unknown>) | undefined;
    if (op === 'create') {
      const username = formField(request, 'username');
      if (!username || !isRole(role)) throw new BadRequest('a user needs a name and a valid role');
      work = () => accounts.addUser(username, password, role, actor);
    } else if (!id) {
      throw new BadRequest('missing user id');
    } else if (op === 'role') {
      if (!isRole(role)) throw new BadRequest('unknown role');
      work = () => accounts.setRole(id, role, actor);
    } else if (op === 'password') {
      work = () => accounts.setPassword(id, password, actor);
    } else if (op === 'disable' || op === 'enable') {
      work = () => accounts.setDisabled(id, op === 'disable', actor);
    } else if (op === 'delete') {
      work = () => accounts.deleteUser(id, actor);
    }
    if (!work) throw new NotFound(`unknown operation "${op}"`);
    request.auditTarget = `${op} ${id || formField(request, 'username')}`;
    const failed = await orPage(reply, work, (e) => usersPage(request, reply, e));
    if (failed) return failed;
    return reply.redirect('/admin/users', 303);
  });
}
