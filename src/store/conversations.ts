import { randomUUID } from 'node:crypto';
import { type SqlDb, type Statement, statement } from './sql.js';

export interface ConversationMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** Base64 images (Ollama's `images`), for models with a vision projector. */
  images?: string[] | undefined;
}

export interface ConversationSummary {
  id: string;
  title: string;
  model: string;
  createdAt: number;
  updatedAt: number;
}

export interface Conversation extends ConversationSummary {
  system: string;
  options: Record<string, unknown>;
  messages: ConversationMessage[];
}

export interface ConversationFields {
  title?: string | undefined;
  model?: string | undefined;
  system?: string | undefined;
  options?: Record<string, unknown> | undefined;
  /** Replaces every message when given. */
  messages?: ConversationMessage[] | undefined;
}

interface Row {
  id: string;
  title: string;
  model: string;
  system: string;
  options: string;
  created_at: number;
  updated_at: number;
}

const summary = (r: Omit<Row, 'system' | 'options'>): ConversationSummary => ({
  id: r.id,
  title: r.title,
  model: r.model,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

type MessageRow = { role: ConversationMessage['role']; content: string; images: string | null };

const message = (m: MessageRow): ConversationMessage => ({
  role: m.role,
  content: m.content,
  ...(m.images ? { images: JSON.parse(m.images) as string[] } : {}),
});

/** The statements that replace a conversation's messages with `list`. */
const replaceMessages = (id: string, list: ConversationMessage[]): Statement[] => [
  statement('DELETE FROM conversation_messages WHERE conversation_id = ?', id),
  ...list.map((m, i) =>
    statement(
      'INSERT INTO conversation_messages (conversation_id, seq, role, content, images) VALUES (?, ?, ?, ?, ?)',
      id,
      i,
      m.role,
      m.content,
      m.images?.length ? JSON.stringify(m.images) : null,
    ),
  ),
];

/**
 * Playground conversations, each owned by one principal ("user:3", "token:7", "loopback"): every
 * query names the owner, so one user can never read or change another's.
 */
export function createConversationsRepo(db: SqlDb, clock: () => number = Date.now) {
  const get = async (owner: string, id: string): Promise<Conversation | undefined> => {
    const row = await db.get<Row>('SELECT * FROM conversations WHERE id = ? AND owner = ?', [id, owner]);
    if (!row) return undefined;
    const messages = await db.all<MessageRow>(
      'SELECT role, content, images FROM conversation_messages WHERE conversation_id = ? ORDER BY seq',
      [id],
    );
    return {
      ...summary(row),
      system: row.system,
      options: JSON.parse(row.options) as Record<string, unknown>,
      messages: messages.map(message),
    };
  };

  return {
    list: async (owner: string, limit = 200): Promise<ConversationSummary[]> =>
      (
        await db.all<Omit<Row, 'system' | 'options'>>(
          `SELECT id, title, model, created_at, updated_at FROM conversations
          WHERE owner = ? ORDER BY updated_at DESC, id LIMIT ?`,
          [owner, limit],
        )
      ).map(summary),
    get,
    async create(owner: string, f: ConversationFields & { model: string }): Promise<Conversation> {
      const id = randomUUID();
      const at = clock();
      await db.batch([
        statement(
          `INSERT INTO conversations (id, owner, title, model, system, options, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          id,
          owner,
          f.title ?? 'New conversation',
          f.model,
          f.system ?? '',
          JSON.stringify(f.options ?? {}),
          at,
          at,
        ),
        ...(f.messages ? replaceMessages(id, f.messages) : []),
      ]);
      return (await get(owner, id))!;
    },
    /** Undefined when there is no such conversation of this owner. */
    async update(owner: string, id: string, f: ConversationFields): Promise<Conversation | undefined> {
      const current = await get(owner, id);
      if (!current) return undefined;
      await db.batch([
        statement(
          `UPDATE conversations SET title = ?, model = ?, system = ?, options = ?, updated_at = ?
          WHERE id = ? AND owner = ?`,
          f.title ?? current.title,
          f.model ?? current.model,
          f.system ?? current.system,
          JSON.stringify(f.options ?? current.options),
          clock(),
          id,
          owner,
        ),
        ...(f.messages ? replaceMessages(id, f.messages) : []),
      ]);
      return get(owner, id);
    },
    remove: async (owner: string, id: string): Promise<boolean> =>
      (await db.run('DELETE FROM conversations WHERE id = ? AND owner = ?', [id, owner])) > 0,
  };
}

export type ConversationsRepo = ReturnType<typeof createConversationsRepo>;
