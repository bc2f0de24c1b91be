import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';

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

/**
 * Playground conversations, each owned by one principal ("user:3", "token:7", "loopback"): every
 * query names the owner, so one user can never read or change another's.
 */
export function createConversationsRepo(db: Database.Database, clock: () => number = Date.now) {
  const list = db.prepare(`SELECT id, title, model, created_at, updated_at FROM conversations
    WHERE owner = ? ORDER BY updated_at DESC, id LIMIT ?`);
  const one = db.prepare('SELECT * FROM conversations WHERE id = ? AND owner = ?');
  const messages = db.prepare(
    'SELECT role, content, images FROM conversation_messages WHERE conversation_id = ? ORDER BY seq',
  );
  const insert =
    db.prepare(`INSERT INTO conversations (id, owner, title, model, system, options, created_at, updated_at)
    VALUES (@id, @owner, @title, @model, @system, @options, @at, @at)`);
  const update = db.prepare(`UPDATE conversations SET title = @title, model = @model, system = @system,
    options = @options, updated_at = @at WHERE id = @id AND owner = @owner`);
  const clear = db.prepare('DELETE FROM conversation_messages WHERE conversation_id = ?');
  const addMessage = db.prepare(`INSERT INTO conversation_messages (conversation_id, seq, role, content, images)
    VALUES (?, ?, ?, ?, ?)`);
  const remove = db.prepare('DELETE FROM conversations WHERE id = ? AND owner = ?');

  const summary = (r: Omit<Row, 'system' | 'options'>): ConversationSummary => ({
    id: r.id,
    title: r.title,
    model: r.model,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
  const writeMessages = (id: string, list: ConversationMessage[]): void => {
    clear.run(id);
    list.forEach((m, i) => {
      addMessage.run(id, i, m.role, m.content, m.images?.length ? JSON.stringify(m.images) : null);
    });
  };
  const get = (owner: string, id: string): Conversation | undefined => {
    const row = one.get(id, owner) as Row | undefined;
    if (!row) return undefined;
    const msgs = (
      messages.all(id) as { role: ConversationMessage['role']; content: string; images: string | null }[]
    ).map(
      (m): ConversationMessage => ({
        role: m.role,
        content: m.content,
        ...(m.images ? { images: JSON.parse(m.images) as string[] } : {}),
      }),
    );
    return {
      ...summary(row),
      system: row.system,
      options: JSON.parse(row.options) as Record<string, unknown>,
      messages: msgs,
    };
  };

  return {
    list: (owner: string, limit = 200): ConversationSummary[] =>
      (list.all(owner, limit) as Omit<Row, 'system' | 'options'>[]).map(summary),
    get,
    create(owner: string, f: ConversationFields & { model: string }): Conversation {
      const id = randomUUID();
      db.transaction(() => {
        insert.run({
          id,
          owner,
          title: f.title ?? 'New conversation',
          model: f.model,
          system: f.system ?? '',
          options: JSON.stringify(f.options ?? {}),
          at: clock(),
        });
        if (f.messages) writeMessages(id, f.messages);
      })();
      return get(owner, id)!;
    },
    /** Undefined when there is no such conversation of this owner. */
    update(owner: string, id: string, f: ConversationFields): Conversation | undefined {
      const current = get(owner, id);
      if (!current) return undefined;
      db.transaction(() => {
        update.run({
          id,
          owner,
          title: f.title ?? current.title,
          model: f.model ?? current.model,
          system: f.system ?? current.system,
          options: JSON.stringify(f.options ?? current.options),
          at: clock(),
        });
        if (f.messages) writeMessages(id, f.messages);
      })();
      return get(owner, id);
    },
    remove: (owner: string, id: string): boolean => remove.run(id, owner).changes > 0,
  };
}

export type ConversationsRepo = ReturnType<typeof createConversationsRepo>;
