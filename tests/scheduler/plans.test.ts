import { join } from 'node:path';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { parseConfig } from '../../src/config/load.js';
import { runnerArgs } from '../../src/runner/args.js';
import { embeddingsChild, ModelPlans, servedModel } from '../../src/scheduler/plans.js';

const fixtures = inject('fixtures');
const base = { globalArgs: [] as string[], ctxSize: 512, parallel: 1 };

describe('how a model is started', () => {
  const m = { name: 'm', path: '/m.gguf', args: [] as string[], embedding: false };

  it('a reranker with --rerank; an embedding model with its pooling, mean by default', () => {
    expect(runnerArgs({ ...m, rerank: true }, base).join(' ')).toContain('--rerank -b 512 -ub 512');
    expect(runnerArgs({ ...m, embedding: true, pooling: 'cls' }, base).join(' ')).toContain(
      '--embeddings --pooling cls',
    );
    expect(runnerArgs({ ...m, embedding: true }, base).join(' ')).toContain('--embeddings --pooling mean -b 512');
    expect(runnerArgs(m, base)).not.toContain('--embeddings');
  });

  it("an embedding child's batch is a slot's context (the GGUF's when the context is 0), so no input is cut at 512", () => {
    const args = runnerArgs({ ...m, embedding: true, contextLength: 8192 }, { ...base, ctxSize: 0 });
    expect(args.join(' ')).toContain('-b 8192 -ub 8192');
    expect(runnerArgs({ ...m, embedding: true }, { ...base, ctxSize: 2048, parallel: 4 }).join(' ')).toContain(
      '-c 8192 -np 4 --embeddings --pooling mean -b 2048 -ub 2048',
    );
  });
});

describe('plans', () => {
  let plans: ModelPlans;
  let catalog: Catalog;
  beforeAll(async () => {
    const config = parseConfig(
      stringify({
        models_dirs: [],
        defaults: { ctx_size: 4096, keep_alive: '1m' },
        models: {
          chat: { path: fixtures.models.chat, mmproj: fixtures.models.mmproj, parallel: 2, pinned: true },
          embed: { path: fixtures.models.embed },
          rerank: { path: fixtures.models.rerank },
        },
      }),
      join('/', 'corral.yaml'),
    );
    catalog = new Catalog({ config, baseDir: '/', cwd: '/' });
    await catalog.refresh();
    plans = new ModelPlans({ catalog, config: () => config, binary: () => 'llama-server', gpuLayers: () => undefined });
  });

  it("a generative model's embeddings come from a child of its own: same GGUF, no projector, small context", () => {
    const chat = catalog.resolve('chat')!;
    const child = plans.schedulable(chat, 'embeddings');
    expect(child.name).toBe('chat:latest (embeddings)');
    expect(child.path).toBe(chat.path);
    expect(child.ctxSize).toBe(2048);
    expect(child.parallel).toBe(2);
    expect(child.pinned).toBe(false);
    expect(child.keepAliveMs).toBe(60_000);
    expect(child.launch).toMatchObject({ embedding: true, mmproj: undefined, pooling: undefined });
    expect(child.memoryBytes).toBeLessThan(plans.schedulable(chat).memoryBytes);
    expect(plans.schedulable(chat, 'embeddings')).toBe(child);
    // A reload or a restart finds it by its name.
    expect(plans.resolve(child.name)).toBe(child);
    expect(servedModel(child.name)).toBe('chat:latest');
    expect(embeddingsChild('chat:latest')).toBe(child.name);
  });

  it('an embedding model or a reranker is its own child', () => {
    const embed = catalog.resolve('embed')!;
    expect(plans.schedulable(embed, 'embeddings')).toBe(plans.schedulable(embed));
    const rerank = plans.schedulable(catalog.resolve('rerank')!);
    expect(rerank.launch).toMatchObject({ rerank: true, embedding: false });
    expect(plans.resolve('missing (embeddings)')).toBeUndefined();
  });
});
