import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest } from '../../errors.js';
import { buildUsageReport, cells, COLUMNS, usageCsv, type GroupBy, type UsageReport } from '../../reports/usage.js';
import type { AdminContext } from '../context.js';

const HOUR = 3_600_000;
export const RANGES: Record<string, number> = {
  '1h': HOUR,
  '6h': 6 * HOUR,
  '24h': 24 * HOUR,
  '7d': 168 * HOUR,
  '30d': 720 * HOUR,
};

interface Query {
  range?: string;
  by?: string;
  from?: string;
  to?: string;
}

/** The period and grouping a usage query asks for: a preset range, or from/to (datetime-local, UTC). */
export function usagePeriod(q: Query, now = Date.now()): { by: GroupBy; since: number; until: number; range: string } {
  const by: GroupBy = q.by === 'token' ? 'token' : 'model';
  const time = (v: string | undefined): number | undefined => {
    if (!v) return undefined;
    const ms = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(ms)) throw new BadRequest(`"${v}" is not a date and time`);
    return ms;
  };
  const from = time(q.from);
  const to = time(q.to) ?? now;
  if (from !== undefined) {
    if (from >= to) throw new BadRequest('"from" must be before "to"');
    return { by, since: from, until: to, range: 'custom' };
  }
  const range = q.range && q.range in RANGES ? q.range : '24h';
  return { by, since: now - RANGES[range]!, until: now, range };
}

/** Usage and latency per model or per token over a chosen range, and its CSV export. */
export function registerUsageRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const report = async (request: FastifyRequest): Promise<{ report: UsageReport; q: Query; range: string }> => {
    const q = request.query as Query;
    const p = usagePeriod(q);
    return { report: await buildUsageReport(ctx.deps.store.requestLog.pages(p.since, p.until), p), q, range: p.range };
  };

  app.get('/admin/usage', async (request, reply) => {
    const { report: r, q, range } = await report(request);
    const query = new URLSearchParams(Object.entries(q).filter(([, v]) => typeof v === 'string' && v !== ''));
    return ctx.page(request, reply, 'usage', 'Usage and latency', {
      r,
      rows: r.rows.map((row) => [row.key, ...cells(row)]),
      total: ['total', ...cells(r.total)],
      columns: COLUMNS,
      ranges: Object.keys(RANGES),
      range,
      from: q.from ?? '',
      to: q.to ?? '',
      csv: `/admin/usage.csv?${query}`,
    });
  });

  app.get('/admin/usage.csv', async (request, reply) => {
    const { report: r } = await report(request);
    const name = `corral-usage-by-${r.by}-${r.since.slice(0, 10)}-${r.until.slice(0, 10)}.csv`;
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}"`)
      .send(usageCsv(r));
  });
}
