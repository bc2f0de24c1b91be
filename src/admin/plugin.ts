import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import fastifyView from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { csrfOf, isHtmx, navFor, packageRoot, type AdminContext } from './context.js';
import type { AdminDeps, ReloadResult } from './deps.js';
import type { FailureRecord } from '../scheduler/supervisor.js';
import { registerAccountRoutes } from './routes/accounts.js';
import { registerActivityRoutes } from './routes/activity.js';
import { registerConfigRoutes } from './routes/config.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerLoginRoutes } from './routes/login.js';
import { registerModelRoutes } from './routes/model.js';
import { registerSettingsRoutes } from './routes/settings.js';
import { registerAlertRoutes } from './routes/alerts.js';
import { registerConversationRoutes } from './routes/conversations.js';
import { registerUsageRoutes } from './routes/usage.js';
import { registerToolRoutes } from './routes/tools.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerNodeRoutes } from './routes/nodes.js';
import { installAdminErrorPages } from './error-pages.js';

/** Only self-hosted scripts and styles; no inline script, no eval (htmx is configured not to need it). */
export const ADMIN_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function securityHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', ADMIN_CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'same-origin');
  reply.header('cross-origin-opener-policy', 'same-origin');
  reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=()');
}

/** The last config reload when it was rejected: every page shows it until a reload succeeds. */
function rejectedReload(deps: AdminDeps): ReloadResult | undefined {
  const last = deps.configControl?.lastReload();
  return last && !last.ok ? last : undefined;
}

/**
 * A model's last failure, however its load was started (a request, a pinned restart, the dashboard),
 * with the runner's reason; a successful load clears it.
 */
function trackFailures(admin: FastifyInstance, ctx: AdminContext): void {
  const { scheduler } = ctx.deps;
  const failed = (name: string, rec: FailureRecord): void => {
    ctx.failures.set(name, { reason: rec.failure.reason, at: rec.failure.at });
  };
  const loaded = (name: string): void => void ctx.failures.delete(name);
  scheduler.on('failed', failed);
  scheduler.on('loaded', loaded);
  admin.addHook('onClose', async () => {
    scheduler.off('failed', failed);
    scheduler.off('loaded', loaded);
  });
}

/** The HTMX admin UI under /admin: pages, fragments, SSE feeds and its static assets. */
export async function registerAdmin(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  await app.register(async (admin) => {
    const root = packageRoot();
    const eta = new Eta({ views: join(root, 'templates'), autoEscape: true, cache: true });
    await admin.register(fastifyView, { engine: { eta }, root: join(root, 'templates'), viewExt: 'eta' });

    admin.addHook('onRequest', async (request, reply) => {
      if (request.url === '/admin' || request.url.startsWith('/admin/') || request.url.startsWith('/admin?'))
        securityHeaders(reply);
    });

    // A fixed list rather than a static directory: the login page needs these before anyone is
    // logged in, so the route is public, and nothing else in templates/ can be fetched.
    const assetDir = join(root, 'templates', 'assets');
    const assets = new Map<string, [file: string, type: string]>([
      [
        'htmx.min.js',
        [createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8'],
      ],
      ['admin.js', [join(assetDir, 'admin.js'), 'text/javascript; charset=utf-8']],
      ['admin.css', [join(assetDir, 'admin.css'), 'text/css; charset=utf-8']],
      ['console.css', [join(assetDir, 'console.css'), 'text/css; charset=utf-8']],
      ['console.js', [join(assetDir, 'console.js'), 'text/javascript; charset=utf-8']],
      ['playground.js', [join(assetDir, 'playground.js'), 'text/javascript; charset=utf-8']],
      ['favicon.svg', [join(assetDir, 'favicon.svg'), 'image/svg+xml']],
    ]);
    const cache = new Map<string, Buffer>();
    admin.get<{ Params: { name: string } }>('/admin/assets/:name', async (request, reply) => {
      const { name } = request.params;
      const asset = assets.get(name);
      if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('no such asset');
      let body = cache.get(name);
      if (!body) cache.set(name, (body = await readFile(asset[0])));
      return reply.type(asset[1]).header('cache-control', 'no-cache').send(body);
    });

    const ctx: AdminContext = {
      deps,
      failures: new Map(),
      async page(request, reply, template, title, data = {}) {
        // Only a logged-in user has a menu: on the public pages (login, setup, errors) the loopback
        // principal is no one to show.
        const user = request.principal?.kind === 'user' ? request.principal : undefined;
        const path = request.url.split('?')[0] ?? '/admin';
        const html = await admin.view(`pages/${template}`, {
          ...data,
          title,
          user,
          csrf: csrfOf(request),
          nav: navFor(user?.role, path),
          firingAlerts: deps.alerts?.firing() ?? [],
          htmx: isHtmx(request),
          configBanner: user ? rejectedReload(deps) : undefined,
        });
        return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
      },
      fragment(template, data) {
        return admin.view(`fragments/${template}`, data);
      },
    };

    trackFailures(admin, ctx);
    installAdminErrorPages(admin, ctx);
    registerLoginRoutes(admin, ctx);
    registerDashboardRoutes(admin, ctx);
    registerModelRoutes(admin, ctx);
    registerSettingsRoutes(admin, ctx);
    registerAlertRoutes(admin, ctx);
    registerConversationRoutes(admin, ctx);
    registerUsageRoutes(admin, ctx);
    registerConfigRoutes(admin, ctx);
    registerSystemRoutes(admin, ctx);
    registerNodeRoutes(admin, ctx);
    registerToolRoutes(admin, ctx);
    registerAccountRoutes(admin, ctx);
    registerTokenRoutes(admin, ctx);
    registerActivityRoutes(admin, ctx);
  });
}
