import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CatalogModel } from '../../catalog/catalog.js';
import { ConfigChanged, createConfigEditor, fileVersion, type ConfigEditor } from '../../config/edit.js';
import { ConfigError } from '../../config/load.js';
import { BadRequest, Forbidden } from '../../errors.js';
import { can, csrfOf, isHtmx, modelParam, type AdminContext } from '../context.js';
import type { ReloadResult } from '../deps.js';
import {
  applySettings,
  describeChanges,
  diffSettings,
  parseSettingsForm,
  settingsOf,
  type ModelSettings,
} from '../model-settings.js';

/** Models whose settings live in the config file; the others are defined by Modelfiles (/api/create). */
const EDITABLE = new Set<CatalogModel['source']>(['config', 'discovered']);

interface Outcome {
  saved?: { changes: string; reload: ReloadResult | undefined } | undefined;
  problems?: string[] | undefined;
  conflict?: string | undefined;
  /** What the user typed, shown again after a refusal. */
  entered?: Record<string, unknown> | undefined;
}

/** The Settings form of a model page: defaults, llama-server args and scheduling, saved into the YAML file. */
export function registerSettingsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { deps } = ctx;
  const editors = new Map<string, ConfigEditor>();
  const editorFor = (file: string): ConfigEditor => {
    let e = editors.get(file);
    if (!e) editors.set(file, (e = createConfigEditor(file)));
    return e;
  };

  app.post('/admin/model/settings', async (request, reply) => {
    const model = lookup(request);
    if (!model) return reply.code(404).type('text/plain; charset=utf-8').send('unknown model');
    request.auditTarget = model.name;
    const file = deps.configControl?.file();
    if (!file || !EDITABLE.has(model.source))
      return reply.code(409).type('text/plain; charset=utf-8').send('this model has no settings in a config file');
    const body = (request.body ?? {}) as Record<string, unknown>;
    const entered = body;
    try {
      const current = settingsOf(deps.config(), model);
      // A form without the args field (the viewer's and operator's: it is disabled for them) keeps them.
      const wanted: ModelSettings = {
        ...parseSettingsForm(body),
        ...(body.args === undefined ? { args: current.args } : {}),
      };
      const changes = diffSettings(current, wanted);
      if (changes.some((c) => c.field === 'args') && !can(request, 'admin'))
        throw new Forbidden('only admins may change llama-server args (they decide what a process runs)');
      if (changes.length === 0) return send(request, reply, model, { saved: { changes: '', reload: undefined } });
      const applied = deps.configControl?.nextReload?.(5000);
      await editorFor(file).edit(String(body.version ?? ''), (doc) =>
        applySettings(doc, { config: deps.config(), configFile: file, model, changes }),
      );
      request.auditDetail = describeChanges(changes);
      const reload = await applied;
      return send(request, reply, model, { saved: { changes: request.auditDetail, reload } });
    } catch (err) {
      if (err instanceof ConfigChanged)
        return send(request, reply.code(409), model, { conflict: err.message, entered });
      if (err instanceof ConfigError) return send(request, reply.code(400), model, { problems: err.problems, entered });
      if (err instanceof BadRequest || err instanceof Forbidden)
        return send(request, reply.code(err.status), model, { problems: [err.message], entered });
      throw err;
    }
  });

  const lookup = (request: FastifyRequest): CatalogModel | undefined => {
    const name = modelParam(request) ?? (request.body as Record<string, unknown> | undefined)?.name;
    return typeof name === 'string' ? deps.catalog.resolve(name) : undefined;
  };

  const send = async (request: FastifyRequest, reply: FastifyReply, model: CatalogModel, outcome: Outcome) => {
    // After a save the catalogue entry may have been replaced by the reload.
    const current = deps.catalog.resolve(model.name) ?? model;
    const html = await ctx.fragment('model-settings', await settingsView(ctx, request, current, outcome));
    if (!isHtmx(request) && reply.statusCode < 400)
      return reply.redirect(`/admin/model?name=${encodeURIComponent(model.name)}`, 303);
    return reply.type('text/html; charset=utf-8').send(html);
  };
}

/** What templates/fragments/model-settings.eta needs. */
export async function settingsView(
  ctx: AdminContext,
  request: FastifyRequest,
  model: CatalogModel,
  outcome: Outcome = {},
): Promise<Record<string, unknown>> {
  const { deps } = ctx;
  const control = deps.configControl;
  const file = control?.file();
  const text = file ? await control!.source() : '';
  const config = deps.config();
  const history = (await deps.store.auditLog.recent({ action: 'model.settings', limit: 200 }))
    .filter((r) => r.target === model.name)
    .slice(0, 10);
  const s = settingsOf(config, model);
  const typed = outcome.entered;
  return {
    m: model,
    editable: file !== undefined && EDITABLE.has(model.source),
    file,
    version: fileVersion(text),
    /** A field's value as the form shows it: what was typed after a refusal, else the saved setting. */
    v: (name: keyof ModelSettings): string => {
      if (typed && typeof typed[name] === 'string') return typed[name] as string;
      const value = s[name];
      return Array.isArray(value)
        ? value.join(name === 'aliases' ? ', ' : '\n')
        : value === undefined
          ? ''
          : String(value);
    },
    pinned: typed ? typed.pinned === 'on' : s.pinned,
    defaults: config.defaults,
    canEdit: can(request, 'operator'),
    canArgs: can(request, 'admin'),
    csrf: csrfOf(request),
    history,
    ...outcome,
  };
}
