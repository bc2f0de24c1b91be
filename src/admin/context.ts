import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { roleAllows, type Role } from '../auth/principal.js';
import { NotFound } from '../errors.js';
import type { AdminDeps } from './deps.js';
import type { FailureNote } from './view-models.js';

/**
 * Per-app admin state and helpers shared by the route modules (one per buildApp, never global).
 * Who may call which route, and the CSRF check, are the auth plugin's (src/auth/roles.ts): a
 * handler runs only for a caller with the route's role.
 */
export interface AdminContext {
  deps: AdminDeps;
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
}

/** The logged-in session's CSRF token, for forms and HTMX headers; none before login. */
export const csrfOf = (request: FastifyRequest): string => request.authSession?.csrfToken ?? '';

/** Whether the caller holds `role`; only decides what a page shows, never what a route allows. */
export const can = (request: FastifyRequest, role: Role): boolean =>
  request.principal !== null && roleAllows(request.principal.role, role);

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
  { href: '/admin/alerts', label: 'Alerts', role: 'viewer' },
  { href: '/admin/playground', label: 'Playground', role: 'viewer' },
  { href: '/admin/pull', label: 'Pull', role: 'operator' },
  { href: '/admin/tokens', label: 'Tokens', role: 'admin' },
  { href: '/admin/users', label: 'Users', role: 'admin' },
  { href: '/admin/config', label: 'Config', role: 'viewer' },
  { href: '/admin/nodes', label: 'Nodes', role: 'viewer' },
  { href: '/admin/system', label: 'System', role: 'viewer' },
] as const satisfies readonly { href: string; label: string; role: Role }[];

export function navFor(role: Role | undefined, path: string): { href: string; label: string; current: boolean }[] {
  return NAV.filter((n) => role !== undefined && roleAllows(role, n.role)).map((n) => ({
    href: n.href,
    label: n.label,
    current: n.href === '/admin' ? path === '/admin' || path === '/admin/' : path.startsWith(n.href),
  }));
}

/** A trimmed text field of a form body; '' when absent or not text. */
export function formField(request: FastifyRequest, name: string): string {
  const v = (request.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v.trim() : '';
}

/** The 404 of an admin page or action naming a model the catalogue does not have. */
export const unknownModel = (name: string | undefined): NotFound =>
  new NotFound(name ? `there is no model "${name}"` : 'no model named (add ?name=…)');

/** A model name from a query string or form body. */
export function modelParam(request: FastifyRequest): string | undefined {
  const q = request.query as Record<string, unknown> | undefined;
  const b = request.body as Record<string, unknown> | undefined;
  const v = b?.model ?? q?.name ?? q?.model;
  return typeof v === 'string' && v !== '' ? v : undefined;
}
