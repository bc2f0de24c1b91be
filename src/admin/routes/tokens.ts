import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isRole, ROLES, roleAllows } from '../../auth/principal.js';
import { createApiToken } from '../../auth/tokens.js';
import { BadRequest, Forbidden } from '../../errors.js';
import { formField, type AdminContext } from '../context.js';
import { formatTime } from '../view-models.js';

/** Lifetimes the create form offers; "never" is no expiry. */
export const EXPIRY_CHOICES = [
  { value: 'never', label: 'never', ms: undefined },
  { value: '1d', label: '1 day', ms: 86_400_000 },
  { value: '7d', label: '7 days', ms: 7 * 86_400_000 },
  { value: '30d', label: '30 days', ms: 30 * 86_400_000 },
  { value: '90d', label: '90 days', ms: 90 * 86_400_000 },
  { value: '365d', label: '1 year', ms: 365 * 86_400_000 },
] as const;

/** A secret waits here between the POST that made it and the GET it redirects to, then is gone. */
interface Reveal {
  id: number;
  name: string;
  secret: string;
  at: number;
}
const REVEAL_TTL_MS = 60_000;

/** Repeated form fields arrive as an array, a single one as a string. */
function fields(request: FastifyRequest, name: string): string[] {
  const v = (request.body as Record<string, unknown> | undefined)?.[name];
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
}

/** A blank field is no limit; anything else must be a whole number from 1 up. */
function limit(request: FastifyRequest, name: string, what: string): number | null {
  const raw = formField(request, name);
  if (raw === '') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1e12) throw new BadRequest(`${what} must be a whole number of 1 or more`);
  return n;
}

/** What the create form asked for, checked; throws BadRequest with a sentence the page shows. */
function parseCreate(request: FastifyRequest, now: number) {
  const name = formField(request, 'name');
  const role = formField(request, 'role');
  if (!name || name.length > 100) throw new BadRequest('a token needs a name (at most 100 characters)');
  if (!isRole(role)) throw new BadRequest(`unknown role "${role}"`);
  const models = fields(request, 'models');
  if (models.some((m) => m.length > 300)) throw new BadRequest('a model name is at most 300 characters');
  const expiry = EXPIRY_CHOICES.find((c) => c.value === (formField(request, 'expires') || 'never'));
  if (!expiry) throw new BadRequest('unknown expiry');
  return {
    name,
    role,
    models: models.length ? [...new Set(models)] : null,
    rpm: limit(request, 'rpm', 'the rate limit'),
    tpd: limit(request, 'tpd', 'the daily token budget'),
    expiresAt: expiry.ms === undefined ? null : now + expiry.ms,
  };
}

/**
 * API tokens: post/redirect/get, so reloading the page never creates a second token. The secret is
 * handed from the POST to the GET through memory keyed by the session (never a URL or a cookie) and
 * shown once; the list shows each token's id and the prefix of its secret.
 */
export function registerTokenRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { store } = ctx.deps;
  const reveals = new Map<string, Reveal>();
  const takeReveal = (request: FastifyRequest): Reveal | undefined => {
    const key = request.authSession?.id;
    const now = Date.now();
    for (const [k, r] of reveals) if (now - r.at > REVEAL_TTL_MS) reveals.delete(k);
    const r = key ? reveals.get(key) : undefined;
    if (key) reveals.delete(key);
    return r;
  };

  const page = async (request: FastifyRequest, reply: FastifyReply, error?: string) => {
    const now = Date.now();
    const tokens = (await store.apiTokens.list()).map((t) => ({
      id: t.id,
      prefix: t.prefix ? `${t.prefix}…` : '—',
      name: t.name,
      role: t.role,
      models: t.models?.join(', ') ?? 'all',
      limits: [t.rpm ? `${t.rpm}/min` : '', t.tpd ? `${t.tpd} tokens/day` : ''].filter(Boolean).join(', ') || 'none',
      owner: t.created_by ?? '—',
      createdAt: formatTime(new Date(t.created_at)),
      expiresAt: t.expires_at === null ? 'never' : formatTime(new Date(t.expires_at)),
      lastUsedAt: t.last_used_at === null ? 'never' : formatTime(new Date(t.last_used_at)),
      status: t.revoked_at !== null ? 'revoked' : t.expires_at !== null && t.expires_at <= now ? 'expired' : 'active',
    }));
    const user = request.principal;
    return ctx.page(request, reply, 'tokens', 'API tokens', {
      tokens,
      created: error ? undefined : takeReveal(request),
      error,
      roles: ROLES.filter((r) => user && roleAllows(user.role, r)),
      models: ctx.deps.catalog.list().map((m) => m.name),
      expiries: EXPIRY_CHOICES,
    });
  };

  app.get('/admin/tokens', (request, reply) => page(request, reply));

  app.post('/admin/tokens', async (request, reply) => {
    let wanted: ReturnType<typeof parseCreate>;
    try {
      wanted = parseCreate(request, Date.now());
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      // The form comes back with what is wrong; nothing was created, so nothing can be repeated.
      reply.code(400);
      return page(request, reply, err.message);
    }
    const user = request.principal;
    // Nobody hands out more power than they hold.
    if (!user || !roleAllows(user.role, wanted.role))
      throw new Forbidden('cannot create a token with a higher role than your own');
    const token = await createApiToken(store, { ...wanted, createdBy: user.name });
    request.auditTarget = `${token.id} ${wanted.name}`;
    const key = request.authSession?.id;
    if (key) reveals.set(key, { id: token.id, name: wanted.name, secret: token.secret, at: Date.now() });
    return reply.redirect('/admin/tokens', 303);
  });

  app.post('/admin/tokens/revoke', async (request, reply) => {
    const id = Number(formField(request, 'id'));
    if (!Number.isInteger(id) || id <= 0) throw new BadRequest('missing token id');
    request.auditTarget = String(id);
    await store.apiTokens.revoke(id);
    return reply.redirect('/admin/tokens', 303);
  });
}
