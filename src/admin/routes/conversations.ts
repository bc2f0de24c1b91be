import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Unauthorized } from '../../errors.js';
import type { Conversation } from '../../store/conversations.js';
import type { AdminContext } from '../context.js';
import { conversationJson, conversationMarkdown, exportFileName } from '../conversation-export.js';

const Message = Type.Object(
  {
    role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.String({ maxLength: 1_000_000 }),
    images: Type.Optional(Type.Array(Type.String({ maxLength: 20_000_000 }), { maxItems: 8 })),
  },
  { additionalProperties: false },
);
const Fields = Type.Object(
  {
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    system: Type.Optional(Type.String({ maxLength: 100_000 })),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 40 })),
    messages: Type.Optional(Type.Array(Message, { maxItems: 2000 })),
  },
  { additionalProperties: false },
);
type Fields = Static<typeof Fields>;
const Id = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });
type Id = Static<typeof Id>;

/** Whose conversations these are: one user, one token, or the shared loopback/open identity. */
export function ownerOf(request: FastifyRequest): string {
  const p = request.principal;
  if (!p) throw new Unauthorized('login required');
  if (p.kind === 'user') return `user:${p.userId}`;
  if (p.kind === 'token') return `token:${p.tokenId}`;
  return p.kind;
}

const summary = (c: Conversation) => ({
  id: c.id,
  title: c.title,
  model: c.model,
  created_at: new Date(c.createdAt).toISOString(),
  updated_at: new Date(c.updatedAt).toISOString(),
});

/** The playground's conversations as JSON for its script: per owner, never anyone else's. */
export function registerConversationRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const repo = ctx.deps.store.conversations;
  // Messages carry images inline, so these take API-sized bodies rather than form-sized ones.
  const bodyLimit = ctx.deps.config().server.body_limit;
  const missing = { error: 'no such conversation' };

  app.get('/admin/conversations', async (request) => ({
    conversations: (await repo.list(ownerOf(request))).map((c) =>
      summary({ ...c, system: '', options: {}, messages: [] }),
    ),
  }));

  app.post<{ Body: Fields }>(
    '/admin/conversations',
    { bodyLimit, schema: { body: Fields } },
    async (request, reply) => {
      const { model, ...rest } = request.body;
      if (!model) return reply.code(400).send({ error: 'missing required field "model"' });
      return reply.code(201).send(await repo.create(ownerOf(request), { model, ...rest }));
    },
  );

  app.get<{ Params: Id }>('/admin/conversations/:id', { schema: { params: Id } }, async (request, reply) => {
    return (await repo.get(ownerOf(request), request.params.id)) ?? reply.code(404).send(missing);
  });

  app.patch<{ Params: Id; Body: Fields }>(
    '/admin/conversations/:id',
    { bodyLimit, schema: { params: Id, body: Fields } },
    async (request, reply) =>
      (await repo.update(ownerOf(request), request.params.id, request.body)) ?? reply.code(404).send(missing),
  );

  app.delete<{ Params: Id }>('/admin/conversations/:id', { schema: { params: Id } }, async (request, reply) => {
    if (!(await repo.remove(ownerOf(request), request.params.id))) return reply.code(404).send(missing);
    return reply.code(204).send();
  });

  app.get<{ Params: Id; Querystring: { format?: string } }>(
    '/admin/conversations/:id/export',
    { schema: { params: Id } },
    async (request, reply) => {
      const c = await repo.get(ownerOf(request), request.params.id);
      if (!c) return reply.code(404).send(missing);
      const md = request.query.format === 'md' || request.query.format === 'markdown';
      return reply
        .type(md ? 'text/markdown; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="${exportFileName(c, md ? 'md' : 'json')}"`)
        .send(md ? conversationMarkdown(c) : conversationJson(c));
    },
  );
}
