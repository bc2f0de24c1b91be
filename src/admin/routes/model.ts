import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { capabilities } from '../../catalog/catalog.js';
import { byCodeUnit } from '../../catalog/names.js';
import { runnerArgs } from '../../runner/args.js';
import { followFile } from '../../runner/follow-file.js';
import { modelLogFile, resumeOffset } from '../../runner/log-file.js';
import type { SupervisedRunner } from '../../scheduler/types.js';
import { modelParam, unknownModel, type AdminContext } from '../context.js';
import type { AdminDeps } from '../deps.js';
import { recentRequests } from '../request-records.js';
import { openSse } from '../sse.js';
import { buildDashboard, formatBytes } from '../view-models.js';
import { settingsView } from './settings.js';
import { whereItRuns } from './nodes.js';

function commandLine(deps: AdminDeps, m: CatalogModel, runner: SupervisedRunner | undefined): string[] {
  if (runner) return runner.command;
  const s = deps.schedulable(m);
  const args = runnerArgs(s.launch, {
    globalArgs: deps.config().llama_server.args,
    ctxSize: s.ctxSize,
    parallel: s.parallel,
  });
  return [deps.binary?.path ?? 'llama-server', ...args, '--host', '<chosen at start>'];
}

/** Scalar GGUF metadata only: token tables and other arrays run to megabytes. */
function metadataRows(m: CatalogModel): [string, string][] {
  const meta = m.gguf.metadata ?? {};
  return Object.entries(meta)
    .filter(([, v]) => v === null || typeof v !== 'object')
    .map(([k, v]): [string, string] => [k, String(v).length > 200 ? `${String(v).slice(0, 200)}…` : String(v)])
    .sort(([a], [b]) => byCodeUnit(a, b));
}

function quote(arg: string): string {
  return /^[\w@%+=:,./<>-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Model detail page and its live log feed. */
export function registerModelRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { deps } = ctx;
  const runnerOf = (name: string): SupervisedRunner | undefined =>
    deps.scheduler.loaded().find((l) => l.name === name)?.runner;

  app.get('/admin/model', async (request, reply) => {
    const name = modelParam(request);
    const m = name ? deps.catalog.resolve(name) : undefined;
    if (!m) throw unknownModel(name);
    const row = buildDashboard(deps, ctx.failures).models.find((r) => r.name === m.name);
    const recent = await recentRequests(deps.store, { limit: 20, model: m.name });
    const g = m.gguf;
    return ctx.page(request, reply, 'model', m.name, {
      m,
      row,
      details: [
        ['Path', m.path],
        ['Source', m.source],
        ['Size', formatBytes(m.size)],
        ['Digest', m.digest],
        ['Architecture', g.architecture],
        ['Parameters', g.parameterSize ?? '—'],
        ['Quantization', g.quantization ?? '—'],
        ['Context length (trained)', String(g.contextLength ?? '—')],
        ['Capabilities', capabilities(m).join(', ')],
        ['Aliases', m.aliases.join(', ') || '—'],
        ...(deps.fleetView ? [['Fleet', whereItRuns(deps.fleetView, m.name)!] as [string, string]] : []),
      ],
      metadata: metadataRows(m),
      command: commandLine(deps, m, runnerOf(m.name)).map(quote).join(' '),
      recent,
      settings: await settingsView(ctx, request, m),
    });
  });

  /**
   * Live log: the model's log file, from its last 200 lines on, followed as llama-server appends to it
   * (across reloads: every run of the model writes to the same file). Event ids are byte offsets, so a
   * reconnecting EventSource resumes where it left off via Last-Event-ID.
   */
  app.get('/admin/model/logs', async (request, reply) => {
    const name = modelParam(request);
    const m = name ? deps.catalog.resolve(name) : undefined;
    if (!m) throw unknownModel(name);
    const file = modelLogFile(resolve(deps.logsDir()), m.name);
    const lastId = request.headers['last-event-id'];
    const from = await resumeOffset(file, /^\d+$/.test(String(lastId)) ? Number(lastId) : undefined, 200);
    const sse = openSse(request, reply);
    const follower = followFile(file, from, (line, end) => sse.send('log', line, end));
    sse.onClose(() => follower.close());
    return reply;
  });
}
