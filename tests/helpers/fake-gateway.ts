import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import { buildApp } from '../../src/app.js';
import { Catalog, type CatalogModel } from '../../src/catalog/catalog.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { ModelPlans, schedulerPolicy } from '../../src/scheduler/plans.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import type { SchedulableModel } from '../../src/scheduler/types.js';
import { openDatabase } from '../../src/store/database.js';
import {
  FakeLlamaClient,
  FakeRunner,
  type FakeRunnerOptions,
  generatesAsAsked,
  type LlamaScript,
} from './fake-llama.js';

export interface FakeGateway {
  /** The parts of a real gateway that tests read, wired the same way, minus processes. */
  gw: {
    app: FastifyInstance;
    scheduler: Scheduler;
    catalog: Catalog;
    schedulable(model: CatalogModel): SchedulableModel;
    config(): Config;
    pinned: Promise<void>;
  };
  url: string;
  dir: string;
  /** Every runner made, in order. */
  runners: FakeRunner[];
  /** The client of a model's current child. */
  client(model: string): FakeLlamaClient;
  close(): Promise<void>;
}

export interface FakeOptions {
  /** What each model's children answer (by canonical name, e.g. "tiny:latest"); default generatesAsAsked. */
  script?: (model: string) => LlamaScript;
  runner?: FakeRunnerOptions;
}

/**
 * Corral's app, catalogue (real GGUF headers), plans, policy and scheduler as createGateway wires them,
 * with scripted runners and clients instead of llama-server children: for Ollama ⇄ llama-server
 * translation and scheduling policy. Listens on an ephemeral loopback port.
 */
export async function startFakeGateway(config: Record<string, unknown>, opts: FakeOptions = {}): Promise<FakeGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'corral-fake-'));
  const parsed = parseConfig(
    stringify({ models_dirs: [], data_dir: join(dir, 'data'), defaults: { ctx_size: 512 }, ...config }),
    join(dir, 'corral.yaml'),
  );
  const catalog = new Catalog({ config: parsed, baseDir: dir, cwd: dir });
  await catalog.refresh();
  const plans = new ModelPlans({
    catalog,
    config: () => parsed,
    binary: () => 'llama-server',
    gpuLayers: () => undefined,
  });
  const runners: FakeRunner[] = [];
  const policy = schedulerPolicy(parsed, catalog, { vramBytes: 0, cpuOnly: true });
  const scheduler = new Scheduler({
    makeRunner: (m) => {
      const r = new FakeRunner(
        m.name,
        () => new FakeLlamaClient(opts.script?.(m.name) ?? generatesAsAsked()),
        opts.runner,
      );
      runners.push(r);
      return r;
    },
    policy: () => policy,
    resolve: plans.resolve,
  });
  const store = openDatabase(join(dir, 'corral.db'));
  const app = await buildApp({
    api: { catalog, scheduler, config: () => parsed, schedulable: plans.schedulable },
    store,
    auth: parsed.auth,
    processMetrics: false,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const pinned = scheduler.loadPinned(plans.pinned());
  return {
    gw: { app, scheduler, catalog, schedulable: plans.schedulable, config: () => parsed, pinned },
    url,
    dir,
    runners,
    client(model) {
      const runner = runners.filter((r) => r.model === model && r.client).at(-1);
      if (!runner?.client) throw new Error(`no child of ${model} is running`);
      return runner.client;
    },
    async close() {
      await app.close();
      await scheduler.shutdown();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
