import type { FastifyInstance } from 'fastify';
import { can, csrfOf, isHtmx, type AdminContext } from '../context.js';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/** Webhook URLs hold secrets: the page names their host only. */
const hostOf = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
};

/** The Alerts page and the banner every page shows while alerts fire. */
export function registerAlertRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { deps } = ctx;

  app.get('/admin/alerts', async (request, reply) => {
    const { alerts } = deps.config();
    const rules = Object.entries(alerts.rules).map(([name, r]) => {
      const { enabled, severity, cooldown, ...thresholds } = r as Record<string, unknown>;
      return {
        name,
        enabled,
        severity,
        cooldown,
        thresholds: Object.entries(thresholds)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      };
    });
    return ctx.page(request, reply, 'alerts', 'Alerts', {
      firing: deps.alerts?.firing() ?? [],
      history: await deps.store.alertHistory.recent(200),
      rules,
      enabled: alerts.enabled,
      interval: alerts.interval,
      webhooks: alerts.webhooks.map((w) => ({ format: w.format, host: hostOf(w.url), min_severity: w.min_severity })),
      canTest: can(request, 'admin'),
      csrf: csrfOf(request),
      time,
    });
  });

  app.post('/admin/alerts/test', async (request, reply) => {
    const sent = deps.alerts?.sendTest(request.principal?.name ?? 'someone') ?? 0;
    request.auditDetail = `to ${sent} webhook${sent === 1 ? '' : 's'}`;
    const text = sent
      ? `Sent a test notification to ${sent} webhook${sent === 1 ? '' : 's'}; failures are retried and logged.`
      : 'No webhook is configured (alerts.webhooks).';
    if (!isHtmx(request)) return reply.redirect('/admin/alerts', 303);
    return reply.type('text/html; charset=utf-8').send(`<p id="test-result" role="status">${escapeHtml(text)}</p>`);
  });

  app.get('/admin/fragments/alert-banner', async (_request, reply) => {
    const html = await ctx.fragment('alert-banner', { alerts: deps.alerts?.firing() ?? [] });
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  });
}
