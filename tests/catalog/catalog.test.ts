import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, capabilities, normalizeModelName } from '../../src/catalog/catalog.js';
import { defaultConfig, parseConfig } from '../../src/config/load.js';
import type { ModelEntry } from '../../src/config/schema.js';
import { writeTinyModel } from '../fixtures/gguf-writer.js';
import { generateFixtureModels, type FixtureModels } from '../fixtures/models.js';

describe('normalizeModelName', () => {
  it('applies Ollama naming rules', () => {
    expect(normalizeModelName('tiny')).toBe('tiny:latest');
    expect(normalizeModelName(' TINY:Latest ')).toBe('tiny:latest');
    expect(normalizeModelName('foo:7b')).toBe('foo:7b');
    expect(normalizeModelName('library/foo')).toBe('foo:latest');
    expect(normalizeModelName('registry.ollama.ai/library/foo:7b')).toBe('foo:7b');
    expect(normalizeModelName('user/foo')).toBe('user/foo:latest');
    expect(normalizeModelName('localhost:5000/foo')).toBe('localhost:5000/foo:latest');
    expect(normalizeModelName('Qwen2.5-0.5B-Q4_K_M')).toBe('qwen2.5-0.5b-q4_k_m:latest');
  });
});

// Built in code rather than YAML: the loader does not yet fill defaults inside `models` entries.
const entry = (e: Partial<ModelEntry> & { path: string }): ModelEntry => ({
  aliases: [],
  args: [],
  options: {},
  pinned: false,
  ...e,
});

describe('Catalog', () => {
  let root: string;
  let fx: FixtureModels;
  let catalog: Catalog;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'corral-catalog-'));
    const models = join(root, 'models');
    fx = await generateFixtureModels(models);
    await writeFile(join(models, 'junk.gguf'), 'not a gguf file');
    await writeFile(join(models, 'notes.txt'), 'ignored');
    await mkdir(join(models, 'nested', 'deeper'), { recursive: true });
    await copyFile(fx.chat, join(models, 'nested', 'deeper', 'Qwen2.5-0.5B-Q4_K_M.gguf'));
    // Same stem as the configured alias `small`: the alias wins and this file stays hidden.
    await copyFile(fx.chat, join(models, 'nested', 'Small.gguf'));
    await mkdir(join(models, 'vision'));
    await copyFile(fx.chat2, join(models, 'vision', 'llava-tiny.gguf'));
    await copyFile(fx.chat, join(models, 'vision', 'mmproj-llava-tiny-f16.gguf'));
    // Configured files live next to the config file, not in a models dir.
    await mkdir(join(root, 'etc', 'own'), { recursive: true });
    await writeTinyModel(join(root, 'etc', 'own', 'thinker.gguf'), {
      seed: 11,
      chatTemplate:
        "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}<think>",
    });
    const config = defaultConfig();
    config.models_dirs = ['models', 'missing-dir'];
    config.data_dir = 'state';
    config.models = {
      tiny: entry({
        path: 'own/thinker.gguf',
        aliases: ['small', 'Foo:7B'],
        args: ['--temp', '0'],
        options: { temperature: 0.2 },
        keep_alive: '10m',
        ctx_size: 1024,
        parallel: 2,
        queue_size: 3,
        pinned: true,
        system: 'be brief',
        mmproj: 'own/proj.gguf',
      }),
      'tiny-chat': entry({ path: '../models/tiny-fim.gguf' }),
      'quiet-embed': entry({ path: '../models/tiny-embed.gguf', embedding: false }),
      gone: entry({ path: 'own/nope.gguf' }),
    };
    catalog = new Catalog({ config, baseDir: join(root, 'etc'), cwd: root });
    await catalog.refresh();
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('lists configured and discovered models sorted by name', () => {
    expect(catalog.list().map((m) => `${m.name} ${m.source}`)).toEqual([
      'llava-tiny:latest discovered',
      'quiet-embed:latest config',
      'qwen2.5-0.5b-q4_k_m:latest discovered',
      'tiny-chat2:latest discovered',
      'tiny-chat:latest config',
      'tiny-rerank:latest discovered',
      'tiny-tools:latest discovered',
      'tiny:latest config',
    ]);
  });

  it('records warnings instead of throwing for bad files', () => {
    const w = catalog.warnings.join('\n');
    expect(w).toMatch(/skipping .*junk\.gguf: .*not a GGUF file/);
    expect(w).toMatch(/model gone:latest .*nope\.gguf/);
    expect(w).not.toMatch(/missing-dir/);
    // A GGUF shorter than its header says (the broken fixture, or a copy in progress) is not listed.
    expect(w).toMatch(/skipping .*tiny-broken\.gguf: shorter than its header says \(still being copied/);
    expect(catalog.warnings).toHaveLength(7);
  });

  it('says which name wins when a config entry and a discovered file meet', () => {
    const w = catalog.warnings.join('\n');
    // The entry's path is a file in a models dir: it is listed under the entry's name only.
    expect(w).toMatch(
      /tiny-fim\.gguf is listed as "tiny-chat:latest" \(models\.tiny-chat in the config\), not as "tiny-fim:latest"/,
    );
    expect(w).toMatch(/tiny-embed\.gguf is listed as "quiet-embed:latest" \(models\.quiet-embed in the config\)/);
    // The entry's name is a discovered file's name: the entry wins, the file is not listed.
    expect(w).toMatch(
      /"tiny-chat:latest" is the config entry models\.tiny-chat \(.*tiny-fim\.gguf\); the file .*models\/tiny-chat\.gguf has the same name and is not listed/,
    );
    expect(w).toMatch(
      /"small:latest" is an alias of the config entry "tiny:latest"; the file .*Small\.gguf has the same name/,
    );
    expect(catalog.resolve('tiny-fim')).toBeUndefined();
    expect(catalog.resolve('tiny-chat')?.path).toMatch(/tiny-fim\.gguf$/);
  });

  it('resolves names, tags, case, namespaces and aliases', () => {
    for (const n of ['tiny', 'TINY:latest', 'library/tiny', 'small', 'foo:7b', 'registry.ollama.ai/library/Foo:7B']) {
      expect(catalog.resolve(n)?.name, n).toBe('tiny:latest');
    }
    expect(catalog.resolve('small')?.path).toBe(join(root, 'etc', 'own', 'thinker.gguf'));
    expect(catalog.resolve('foo')).toBeUndefined();
    expect(catalog.resolve('tiny:7b')).toBeUndefined();
    expect(catalog.resolve('Qwen2.5-0.5B-Q4_K_M')?.path).toBe(
      join(root, 'models', 'nested', 'deeper', 'Qwen2.5-0.5B-Q4_K_M.gguf'),
    );
  });

  it('carries configured settings with paths resolved against the config directory', () => {
    const m = catalog.resolve('tiny')!;
    expect(m).toMatchObject({
      path: join(root, 'etc', 'own', 'thinker.gguf'),
      aliases: ['small:latest', 'foo:7b'],
      args: ['--temp', '0'],
      options: { temperature: 0.2 },
      keepAlive: '10m',
      ctxSize: 1024,
      parallel: 2,
      queueSize: 3,
      pinned: true,
      system: 'be brief',
      mmproj: join(root, 'etc', 'own', 'proj.gguf'),
      embedding: false,
    });
    expect(m.gguf.architecture).toBe('llama');
    expect(m.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(m.modifiedAt).toBeInstanceOf(Date);
    expect(capabilities(m)).toEqual(['completion', 'tools', 'vision', 'thinking']);
  });

  it('lets configuration win over a discovered file and does not list a configured file twice', () => {
    const m = catalog.resolve('tiny-chat')!;
    expect(m.source).toBe('config');
    expect(m.path).toBe(fx.fim);
    expect(catalog.list().filter((x) => x.path === fx.fim)).toHaveLength(1);
    expect(catalog.list().some((x) => x.path === fx.chat)).toBe(false);
    expect(capabilities(m)).toEqual(['completion', 'insert']);
  });

  it('detects embedding models unless configured otherwise', () => {
    expect(catalog.resolve('quiet-embed')!.embedding).toBe(false);
    const discovered = new Catalog({
      config: parseConfig('models_dirs: [models]', join(root, 'x.yaml')),
      baseDir: root,
      cwd: root,
    });
    return discovered.refresh().then(() => {
      const e = discovered.resolve('tiny-embed')!;
      expect(e.embedding).toBe(true);
      expect(capabilities(e)).toEqual(['embedding']);
      expect(discovered.resolve('tiny-chat')!.embedding).toBe(false);
      // Pooling type "rank": a reranker, which neither embeds nor completes.
      const r = discovered.resolve('tiny-rerank')!;
      expect(r.embedding).toBe(false);
      expect(capabilities(r)).toEqual(['rerank']);
    });
  });

  it('pairs a model with a sibling projector and never lists projectors', () => {
    const m = catalog.resolve('llava-tiny')!;
    expect(m.mmproj).toBe(join(root, 'models', 'vision', 'mmproj-llava-tiny-f16.gguf'));
    expect(capabilities(m)).toContain('vision');
    expect(catalog.list().some((x) => x.path.includes('mmproj'))).toBe(false);
  });

  it('keeps digests under data_dir and picks up added and removed files on refresh', async () => {
    const digests = JSON.parse(await readFile(join(root, 'state', 'digests.json'), 'utf8')) as Record<
      string,
      { digest: string }
    >;
    expect(digests[fx.chat2]?.digest).toBe(catalog.resolve('tiny-chat2')!.digest);
    const added = join(root, 'models', 'added.gguf');
    await writeTinyModel(added, { seed: 21 });
    expect(catalog.resolve('tiny-tools')).toBeDefined();
    await rm(fx.tools);
    await catalog.refresh();
    expect(catalog.resolve('added')?.source).toBe('discovered');
    expect(catalog.resolve('tiny-tools')).toBeUndefined();
  });
});
