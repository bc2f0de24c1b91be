import { dirname, relative } from 'node:path';
import { type Document, isMap, isScalar, isSeq } from 'yaml';
import { normalizeModelName, type CatalogModel } from '../catalog/catalog.js';
import { setOrDelete } from '../config/edit.js';
import type { Config } from '../config/schema.js';
import { BadRequest } from '../errors.js';

/** The sampling defaults the form edits; they live under `models.<name>.options`. */
export const OPTION_FIELDS = ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty'] as const;
type OptionField = (typeof OPTION_FIELDS)[number];

/** What the Settings form shows and saves; undefined = not set (the default applies). */
export interface ModelSettings extends Partial<Record<OptionField, number>> {
  stop: string[];
  ctx_size?: number | undefined;
  parallel?: number | undefined;
  keep_alive?: string | undefined;
  group?: string | undefined;
  pinned: boolean;
  aliases: string[];
  args: string[];
}

export interface SettingChange {
  field: keyof ModelSettings;
  before: unknown;
  after: unknown;
}

/** The `models:` key of a configured model (as written in the file), or undefined for other sources. */
export function configKeyOf(config: Config, model: CatalogModel): string | undefined {
  if (model.source !== 'config') return undefined;
  return Object.keys(config.models).find((k) => normalizeModelName(k) === model.name);
}

/** Whether a group member written as `member` names this model. */
const memberOf = (model: CatalogModel) => (member: string) => {
  const n = normalizeModelName(member);
  return n === model.name || model.aliases.includes(n);
};

export function settingsOf(config: Config, model: CatalogModel): ModelSettings {
  const key = configKeyOf(config, model);
  const entry = key === undefined ? undefined : config.models[key];
  const options = entry?.options ?? {};
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const stop = options.stop;
  const isMember = memberOf(model);
  return {
    ...Object.fromEntries(OPTION_FIELDS.map((f) => [f, num(options[f])])),
    stop: typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop.map(String) : [],
    ctx_size: entry?.ctx_size,
    parallel: entry?.parallel,
    keep_alive: entry?.keep_alive === undefined ? undefined : String(entry.keep_alive),
    group: Object.entries(config.scheduler.groups).find(([, members]) => members.some(isMember))?.[0],
    pinned: entry?.pinned ?? false,
    aliases: entry?.aliases ?? [],
    args: entry?.args ?? [],
  };
}

const lines = (v: unknown): string[] =>
  String(v ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');

/** The form's fields as settings; every problem is reported at once (400). */
export function parseSettingsForm(body: Record<string, unknown>): ModelSettings {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const v = body[name];
    const s = typeof v === 'string' ? v.trim() : '';
    return s === '' ? undefined : s;
  };
  const number = (name: string, check: (n: number) => boolean, what: string): number | undefined => {
    const s = text(name);
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || !check(n)) problems.push(`${name} must be ${what}`);
    return n;
  };
  const integer = (n: number) => Number.isInteger(n);
  const settings: ModelSettings = {
    temperature: number('temperature', (n) => n >= 0 && n <= 10, 'a number from 0 to 10'),
    top_k: number('top_k', (n) => integer(n) && n >= 0, 'a whole number ≥ 0'),
    top_p: number('top_p', (n) => n >= 0 && n <= 1, 'a number from 0 to 1'),
    min_p: number('min_p', (n) => n >= 0 && n <= 1, 'a number from 0 to 1'),
    repeat_penalty: number('repeat_penalty', (n) => n >= 0 && n <= 10, 'a number from 0 to 10'),
    stop: lines(body.stop),
    ctx_size: number('ctx_size', (n) => integer(n) && n >= 0 && n <= 16_777_216, 'a whole number ≥ 0'),
    parallel: number('parallel', (n) => integer(n) && n >= 1 && n <= 256, 'a whole number from 1 to 256'),
    keep_alive: text('keep_alive'),
    group: text('group'),
    pinned: body.pinned === 'on' || body.pinned === 'true',
    aliases: String(body.aliases ?? '')
      .split(/[\s,]+/)
      .filter(Boolean),
    args: lines(body.args),
  };
  if (settings.group !== undefined && !/^[\w.-]{1,64}$/.test(settings.group))
    problems.push('group must be a name of letters, digits, ".", "_" or "-"');
  for (const a of settings.aliases)
    if (!/^[\w.:/-]{1,200}$/.test(a)) problems.push(`alias "${a}" is not a valid model name`);
  if (problems.length) throw new BadRequest(problems.join('; '));
  return settings;
}

export function diffSettings(before: ModelSettings, after: ModelSettings): SettingChange[] {
  const fields = Object.keys(after) as (keyof ModelSettings)[];
  return fields
    .filter((f) => JSON.stringify(before[f] ?? null) !== JSON.stringify(after[f] ?? null))
    .map((field) => ({ field, before: before[field], after: after[field] }));
}

const show = (v: unknown): string =>
  v === undefined || (Array.isArray(v) && v.length === 0) ? '(unset)' : JSON.stringify(v);

/** One line for the audit log and the save message: `temperature: 0.8 → 0.3; ctx_size: (unset) → 1024`. */
export const describeChanges = (changes: SettingChange[]): string =>
  changes.map((c) => `${c.field}: ${show(c.before)} → ${show(c.after)}`).join('; ');

/** "300" is written as the number 300 (seconds), "5m" as a string. */
const durationValue = (v: string | undefined): string | number | undefined =>
  v !== undefined && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;

/**
 * Applies `changes` to the config document. A model without an entry (discovered in a models
 * directory) gets one first, named after the model with its path relative to the config file.
 */
export function applySettings(
  doc: Document,
  opts: { config: Config; configFile: string; model: CatalogModel; changes: SettingChange[] },
): void {
  const { config, model, changes } = opts;
  let key = configKeyOf(config, model);
  if (key === undefined) {
    key = model.name.replace(/:latest$/, '');
    const models = doc.getIn(['models'], true);
    if (isMap(models) && models.items.length === 0) models.flow = false;
    doc.setIn(['models', key], doc.createNode({ path: relative(dirname(opts.configFile), model.path) }));
  }
  const entry = ['models', key];
  for (const c of changes) {
    const after = c.after as never;
    if ((OPTION_FIELDS as readonly string[]).includes(c.field)) setOrDelete(doc, [...entry, 'options', c.field], after);
    else if (c.field === 'stop')
      setOrDelete(doc, [...entry, 'options', 'stop'], c.after && (c.after as []).length ? after : undefined);
    else if (c.field === 'keep_alive') setOrDelete(doc, [...entry, 'keep_alive'], durationValue(c.after as string));
    else if (c.field === 'group') moveToGroup(doc, config, model, key, c.after as string | undefined);
    else if (c.field === 'pinned') setOrDelete(doc, [...entry, 'pinned'], c.after ? true : undefined);
    else if (c.field === 'aliases' || c.field === 'args')
      setOrDelete(doc, [...entry, c.field], (c.after as string[]).length ? after : undefined);
    else setOrDelete(doc, [...entry, c.field], after);
  }
  const options = doc.getIn([...entry, 'options'], true);
  if (isMap(options) && options.items.length === 0) doc.deleteIn([...entry, 'options']);
}

/**
 * Takes the model out of every swap group but `group` and into `group` (created if needed), editing
 * the lists in place so their comments stay.
 */
function moveToGroup(doc: Document, config: Config, model: CatalogModel, key: string, group: string | undefined) {
  const isMember = memberOf(model);
  for (const g of Object.keys(config.scheduler.groups)) {
    if (g === group) continue;
    const path = ['scheduler', 'groups', g];
    const seq = doc.getIn(path, true);
    if (!isSeq(seq)) continue;
    seq.items = seq.items.filter((item) => !(isScalar(item) && isMember(String(item.value))));
    if (seq.items.length === 0) doc.deleteIn(path);
  }
  if (group === undefined || config.scheduler.groups[group]?.some(isMember)) return;
  const path = ['scheduler', 'groups', group];
  const seq = doc.getIn(path, true);
  if (isSeq(seq)) seq.add(doc.createNode(key));
  else setOrDelete(doc, path, [key]);
}
