import { Forbidden } from '../errors.js';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /**
   * anonymous-loopback: no credential, local client, mode loopback-open (Ollama's behaviour);
   * open: no credential, mode off; token: API token; user: web session.
   */
  kind: 'anonymous-loopback' | 'open' | 'token' | 'user';
  role: Role;
  userId?: number;
  tokenId?: number;
  name: string;
  /** Model allow-list; null or absent = every model. */
  models?: string[] | null;
  /** Per-day token budget of an API token, if any. */
  tokensPerDay?: number | null;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export const isRole = (value: unknown): value is Role => typeof value === 'string' && value in RANK;

/** Roles are strictly nested: operator can do all a viewer can, admin all an operator can. */
export function roleAllows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** Model names compare without a ":latest" tag, so "llama3" and "llama3:latest" are one entry. */
const canonical = (name: string) =>
  name
    .trim()
    .toLowerCase()
    .replace(/:latest$/, '');

export function modelAllowed(principal: Principal | null | undefined, model: string): boolean {
  const list = principal?.models;
  if (!list) return true;
  const wanted = canonical(model);
  return list.some((m) => canonical(m) === wanted);
}

/** The models of `list` the principal may use; `list` itself (same array) when it may use all. */
export function visibleModels<T extends { name: string }>(principal: Principal | null | undefined, list: readonly T[]) {
  return principal?.models ? list.filter((m) => modelAllowed(principal, m.name)) : list;
}

/** Routes call this once they have resolved the model a request is for. */
export function assertModelAllowed(principal: Principal | null | undefined, model: string): void {
  if (!modelAllowed(principal, model)) throw new Forbidden(`model "${model}" is not allowed for this token`);
}
