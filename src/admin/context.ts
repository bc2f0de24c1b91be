import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { roleAtLeast, type AuthAdapter, type Role } from './auth-adapter.js';
import type { AdminDeps } from './deps.js';
import type { FailureNote } from './view-models.js';

/** Per-app admin state and helpers shared by the route modules (one per buildApp, never global). */
export interface AdminContext {
  deps: AdminDeps;
  auth: AuthAdapter;
  /** Last load failure per model: the scheduler forgets a failed runner, the dashboard should not. */
  failures: Map<string, FailureNote>;
  /** Renders a full page inside the layout, with the user, CSRF token and navigation filled in. */
  page(
    request: FastifyRequest,
    reply: FastifyReply,
    template: string,
    title: string,
    data?: Record<string, unknown>,
  ): Promise<FastifyReply>;
  /** Renders a template to a string (fragments for HTMX swaps and SSE). */
  fragment(template: string, data: Record<string, unknown>): Promise<string>;
  /** Guards a route: false means a response was already sent. */
  allow(request: FastifyRequest, reply: FastifyReply, role: Role, opts?: { csrf?: boolean }): boolean;
}

/** The package root, from src/admin (vitest) or dist/src/admin (built): where templates/ lives. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export function isHtmx(request: FastifyRequest): boolean {
  return request.headers['hx-request'] === 'true';
}

export const NAV = [
  { href: '/admin', label: 'Dashboard', role: 'viewer' },
  { href: '/admin/activity', label: 'Activity', role: 'viewer' },
  { href: '/admin/playground', label: 'Playground', role: 'viewer' },
  { href: '/admin/pull', label: 'Pull', role: 'operator' },
  { href: '/admin/tokens', label: 'Tokens', role: 'operator' },
  { href: '/admin/users', label: 'Users', role: 'admin' },
  { href: '/admin/config', label: 'Config', role: 'viewer' },
  { href: '/admin/system', label: 'System', role: 'viewer' },
] as const satisfies readonly { href: string; label: string; role: Role }[];

export function navFor(role: Role | undefined, path: string): { href: string; label: string; current: boolean }[] {
  return NAV.filter((n) => role !== undefined && roleAtLeast(role, n.role)).map((n) => ({
    href: n.href,
    label: n.label,
    current: n.href === '/admin' ? path === '/admin' || path === '/admin/' : path.startsWith(n.href),
  }));
}

/** A model name from a query string or form body. */
export function modelParam(request: FastifyRequest): string | undefined {
  const q = request.query as Record<string, unknown> | undefined;
  const b = request.body as Record<string, unknown> | undefined;
  const v = b?.model ?? q?.name ?? q?.model;
  return typeof v === 'string' && v !== '' ? v : undefined;
}
