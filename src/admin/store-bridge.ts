import type { AccountsStore, RequestLog, RequestRecord, TokenRow, UserRow } from './deps.js';

/**
 * Adapts the auth branch's store (src/store, src/auth/accounts.ts, src/auth/tokens.ts) to the admin
 * UI's data interfaces. The shapes below mirror that code structurally so this file compiles on
 * main before the merge; at merge time gateway.ts calls these with the real objects.
 */

type Role = 'viewer' | 'operator' | 'admin';

interface StoreTokenInfo {
  id: number;
  name: string;
  role: Role;
  created_at: number;
  created_by: string | null;
  last_used_at: number | null;
  revoked_at: number | null;
  expires_at: number | null;
}
interface StorePublicUser {
  id: number;
  username: string;
  role: Role;
  created_at: number;
  updated_at: number;
  disabled: number;
}
interface StoreRequestRow {
  at: number;
  principal: string;
  model: string | null;
  status: number;
  prompt_tokens: number | null;
  eval_tokens: number | null;
  ttft_ms: number | null;
  total_ms: number | null;
}

export interface StoreLike {
  apiTokens: { list(): StoreTokenInfo[]; revoke(id: number, now?: number): boolean };
  requestLog: { recent(q?: { model?: string; since?: number; limit?: number }): StoreRequestRow[] };
}

/** src/auth/accounts.ts createAccounts(): users are addressed by username. */
export interface AccountsLike {
  list(): StorePublicUser[];
  addUser(username: string, password: string, role: Role, actor?: string): Promise<number>;
  setPassword(username: string, password: string, actor?: string): Promise<void>;
  setRole(username: string, role: Role, actor?: string): void;
  deleteUser(username: string, actor?: string): void;
  setDisabled(username: string, disabled: boolean, actor?: string): void;
}

/** src/auth/tokens.ts createApiToken(store, options) bound to the store. */
export type CreateApiToken = (options: { name: string; role: Role; createdBy?: string | null }) => {
  id: number;
  secret: string;
};

export function accountsFromStore(
  store: StoreLike,
  accounts: AccountsLike,
  createApiToken: CreateApiToken,
): AccountsStore {
  return {
    listTokens: (): TokenRow[] =>
      store.apiTokens.list().map((t) => ({
        id: t.id,
        name: t.name,
        role: t.role,
        owner: t.created_by ?? undefined,
        createdAt: new Date(t.created_at),
        lastUsedAt: t.last_used_at === null ? undefined : new Date(t.last_used_at),
        revoked: t.revoked_at !== null || (t.expires_at !== null && t.expires_at <= Date.now()),
      })),
    createToken: ({ name, role, createdBy }) =>
      createApiToken({ name, role: role as Role, createdBy: createdBy === undefined ? null : String(createdBy) }),
    revokeToken: (id) => void store.apiTokens.revoke(Number(id)),
    // The username is the id: accounts.ts addresses users by name.
    listUsers: (): UserRow[] =>
      accounts.list().map((u) => ({
        id: u.username,
        username: u.username,
        role: u.role,
        disabled: Boolean(u.disabled),
        createdAt: new Date(u.created_at),
      })),
    createUser: ({ username, password, role, actor }) => accounts.addUser(username, password, role as Role, actor),
    setUserRole: (id, role) => accounts.setRole(id, role as Role),
    resetPassword: (id, password) => accounts.setPassword(id, password),
    deleteUser: (id) => accounts.deleteUser(id),
    setUserDisabled: (id, disabled) => accounts.setDisabled(id, disabled),
  };
}

export function requestLogFromStore(store: StoreLike): RequestLog {
  return {
    recent: ({ limit, model, since }): RequestRecord[] =>
      store.requestLog
        .recent({ limit, ...(model ? { model } : {}), ...(since ? { since: since.getTime() } : {}) })
        .map((r) => {
          const genMs = r.total_ms !== null && r.ttft_ms !== null ? r.total_ms - r.ttft_ms : undefined;
          return {
            at: new Date(r.at),
            model: r.model ?? '—',
            who: r.principal,
            status: r.status,
            promptTokens: r.prompt_tokens ?? undefined,
            completionTokens: r.eval_tokens ?? undefined,
            ttftMs: r.ttft_ms ?? undefined,
            tokensPerSecond: r.eval_tokens && genMs && genMs > 0 ? r.eval_tokens / (genMs / 1000) : undefined,
            durationMs: r.total_ms ?? 0,
          };
        }),
  };
}
