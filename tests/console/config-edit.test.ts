import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applySettings, diffSettings, settingsOf, type ModelSettings } from '../../src/admin/model-settings.js';
import type { CatalogModel } from '../../src/catalog/catalog.js';
import { ConfigChanged, createConfigEditor, fileVersion } from '../../src/config/edit.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const SOURCE = `# Hand-written config.
scheduler:
  groups:
    big: [tiny, other] # only one of these fits
models:
  # The small one.
  tiny:
    path: \${MODEL_DIR:-/models}/tiny.gguf
    args: [--flash-attn, auto]
    options: {temperature: 0.8}

  other:
    path: /models/other.gguf
`;

const model = (over: Partial<CatalogModel>): CatalogModel =>
  ({ name: 'tiny:latest', source: 'config', aliases: [], path: '/models/tiny.gguf', ...over }) as CatalogModel;

describe('editing the config file', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'corral-edit-'));
    file = join(dir, 'corral.yaml');
    await writeFile(file, SOURCE);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const save = (
    change: (s: ModelSettings) => ModelSettings,
    m = model({}),
    version = fileVersion(SOURCE),
    editor = createConfigEditor(file, {}),
  ) => {
    const config = parseConfig(SOURCE, file, {});
    const before = settingsOf(config, m);
    const changes = diffSettings(before, change(before));
    return editor.edit(version, (doc) => applySettings(doc, { config, configFile: file, model: m, changes }));
  };

  it('changes only what was edited, keeping comments, blank lines, order, flow style and ${VAR} references', async () => {
    const { text, version } = await save((s) => ({ ...s, temperature: 0.2, top_k: 40, group: 'small', pinned: true }));
    expect(version).toBe(fileVersion(text));
    expect(await readFile(file, 'utf8')).toBe(text);
    expect(text).toBe(`# Hand-written config.
scheduler:
  groups:
    big: [other] # only one of these fits
    small: [tiny]
models:
  # The small one.
  tiny:
    path: \${MODEL_DIR:-/models}/tiny.gguf
    args: [--flash-attn, auto]
    options: {temperature: 0.2, top_k: 40}
    pinned: true

  other:
    path: /models/other.gguf
`);
  });

  it('leaves every line it did not change as it was, aligned comments included (the shipped config)', async () => {
    const shipped = await readFile(new URL('../../config/corral.yaml', import.meta.url), 'utf8');
    await writeFile(file, shipped);
    const config = parseConfig(shipped, file, {});
    const m = model({ name: 'disc:latest', source: 'discovered', path: join(dir, 'disc.gguf') });
    const before = settingsOf(config, m);
    const { text } = await createConfigEditor(file, {}).edit(fileVersion(shipped), (doc) =>
      applySettings(doc, {
        config,
        configFile: file,
        model: m,
        changes: diffSettings(before, { ...before, ctx_size: 2048 }),
      }),
    );
    const kept = new Set(text.split('\n'));
    const changed = shipped.split('\n').filter((l) => !kept.has(l));
    expect(changed).toEqual(['models: {}']);
    expect(text).toContain('models:\n  disc:\n    path: disc.gguf\n    ctx_size: 2048\n#  qwen:');
    expect(text).toContain('  host: 127.0.0.1          # beyond loopback');
  });

  it('unsetting a field removes it, and an emptied options map goes too', async () => {
    const { text } = await save((s) => ({ ...s, temperature: undefined, args: [] }));
    expect(text).not.toContain('options');
    expect(text).not.toContain('args');
    expect(text).toContain('# The small one.');
  });

  it('gives a discovered model an entry with its path relative to the config file', async () => {
    const discovered = model({ name: 'qwen-0.5b:latest', source: 'discovered', path: join(dir, '..', 'm', 'q.gguf') });
    const { text } = await save((s) => ({ ...s, ctx_size: 2048 }), discovered);
    const config = parseConfig(text, file, {});
    expect(config.models['qwen-0.5b']).toMatchObject({ path: '../m/q.gguf', ctx_size: 2048 });
    expect(text.startsWith('# Hand-written config.\n')).toBe(true);
  });

  it('refuses when the file changed since the form was loaded, and writes nothing', async () => {
    await expect(save((s) => ({ ...s, temperature: 0.1 }), model({}), fileVersion('older text'))).rejects.toThrow(
      ConfigChanged,
    );
    expect(await readFile(file, 'utf8')).toBe(SOURCE);
  });

  it('of two saves from forms loaded at the same time, the second is refused', async () => {
    const editor = createConfigEditor(file, {});
    const results = await Promise.allSettled([
      save((s) => ({ ...s, temperature: 0.1 }), model({}), fileVersion(SOURCE), editor),
      save((s) => ({ ...s, temperature: 0.5 }), model({}), fileVersion(SOURCE), editor),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect(parseConfig(await readFile(file, 'utf8'), file, {}).models.tiny!.options.temperature).toBe(0.1);
  });

  it('validates against the config schema first: an invalid result never reaches the file', async () => {
    const err = await save((s) => ({ ...s, keep_alive: 'soon' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]).toMatch(/corral\.yaml:\d+: models\.tiny\.keep_alive: invalid duration/);
    expect(await readFile(file, 'utf8')).toBe(SOURCE);
    expect(await readdir(dir)).toEqual(['corral.yaml']);
  });
});
