import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/duration.js';
import { compareReports, comparisonText } from '../reports/compare.js';
import { buildUsageReport, usageCsv, usageTable, type GroupBy, type UsageReport } from '../reports/usage.js';
import { openStore, storeConfigFor } from '../store/open.js';
import type { StoreCliIo } from './store.js';

const USAGE =
  'usage: corral report [--since 7d] [--by model|token] [--json | --csv] [--compare earlier.json] ' +
  '[--threshold 10] [--min-requests 5] [--db path | --config file]';

const defaultIo: StoreCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

async function readReport(file: string): Promise<UsageReport> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { report?: UsageReport } & Partial<UsageReport>;
  const report = parsed.kind === 'corral-usage-report' ? (parsed as UsageReport) : parsed.report;
  if (report?.kind !== 'corral-usage-report') throw new Error(`${file} is not the output of \`corral report --json\``);
  return report;
}

/**
 * `corral report`: usage and latency per model (or per token) from the request log, read-only, so it
 * runs beside a serving Corral. With --compare, exits 1 when a model regressed beyond the threshold.
 */
export async function reportCommand(args: string[], io: StoreCliIo = defaultIo, now = Date.now()): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      since: { type: 'string', default: '7d' },
      by: { type: 'string', default: 'model' },
      json: { type: 'boolean', default: false },
      csv: { type: 'boolean', default: false },
      compare: { type: 'string' },
      threshold: { type: 'string', default: '10' },
      'min-requests': { type: 'string', default: '5' },
      db: { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
  });
  const threshold = Number(values.threshold);
  const minRequests = Number(values['min-requests']);
  let sinceMs: number;
  try {
    sinceMs = parseDuration(values.since);
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if ((values.by !== 'model' && values.by !== 'token') || !(threshold >= 0) || !(minRequests >= 1)) {
    io.err(USAGE);
    return 2;
  }
  const config = await storeConfigFor(values.db, values.config);
  if (!config.url && !existsSync(resolve(config.path))) throw new Error(`${resolve(config.path)} does not exist`);
  const store = await openStore(config, process.cwd(), { startupWaitMs: 0 });
  let report: UsageReport;
  try {
    const since = Number.isFinite(sinceMs) ? now - sinceMs : 0;
    const pages = store.requestLog.pages(since, now + 1);
    report = await buildUsageReport(pages, { by: values.by as GroupBy, since, until: now });
  } finally {
    await store.close();
  }
  const earlier = values.compare ? await readReport(values.compare) : undefined;
  const comparison = earlier ? compareReports(earlier, report, { thresholdPct: threshold, minRequests }) : undefined;
  if (values.json) io.out(JSON.stringify(comparison ? { report, comparison } : report, null, 2));
  else if (values.csv) io.out(usageCsv(report).trimEnd());
  else {
    io.out(`Requests ${report.since} – ${report.until}, by ${report.by}\n`);
    io.out(usageTable(report));
    if (comparison)
      io.out(
        `\nCompared with ${values.compare} (${earlier!.since} – ${earlier!.until}):\n` +
          comparisonText(comparison, threshold),
      );
  }
  return comparison?.some((c) => c.regressed) ? 1 : 0;
}
