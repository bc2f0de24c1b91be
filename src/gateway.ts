import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp } from './app.js';
import { binaryCheck, configCheck, writableDirCheck } from './health/checks.js';
import { Catalog, type CatalogModel } from './catalog/catalog.js';
import { parseDuration } from './config/duration.js';
import { loadConfig, type LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { ensureLlamaServer, type ResolvedBinary } from './provision/llama-binary.js';
import { runnerArgs } from './runner/args.js';
import { Runner } from './runner/runner.js';
import { estimateMemory } from './scheduler/memory.js';
import { Scheduler, type SchedulableModel } from './scheduler/scheduler.js';

export interface GatewayOptions {
  configFile: string;
  /** Working directory for relative data/logs/models paths. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logger?: FastifyServerOptions['logger'];
  /** Missing config file → embedded defaults (the quick start); tests pass false. */
  optionalConfig?: boolean;
}

export interface Gateway {
  app: FastifyInstance;
  scheduler: Scheduler;
  catalog: Catalog;
  binary: ResolvedBinary;
  config(): Config;
  loaded: LoadedConfig;
  /** Stops accepting requests and stops every llama-server. */
  close(): Promise<void>;
}

function safeFileName(name: string): string {
  return name.replace(/[^a-zA-Z0-9._-]+/g, '_');
}

/** The composition root: config → catalogue → scheduler → app. Nothing here is global. */
export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const env = opts.env ?? process.env;
  const cwd = resolve(opts.cwd ?? process.cwd());
  const loaded = await loadConfig(resolve(cwd, opts.configFile), { optional: opts.optionalConfig ?? false, env });
  let config = loaded.config;
  const binary = await ensureLlamaServer({ configured: config.llama_server.binary, env, progress: (l) => process.stderr.write(`[llama-server build] ${l}\n`) });
  const catalog = new Catalog({ config, baseDir: loaded.baseDir, cwd });
  await catalog.refresh();

  const schedulable = (m: CatalogModel): SchedulableModel => {
    const parallel = m.parallel ?? config.defaults.parallel;
    const ctxSize = m.ctxSize ?? config.defaults.ctx_size;
    return {
      name: m.name,
      path: m.path,
      parallel,
      queueSize: m.queueSize ?? config.defaults.queue_size,
      ctxSize,
      keepAliveMs: parseDuration(m.keepAlive ?? config.defaults.keep_alive),
      memoryBytes: estimateMemory(
        { fileBytes: m.size, blockCount: m.gguf.blockCount, embeddingLength: m.gguf.embeddingLength, headCount: m.gguf.headCount, headCountKv: m.gguf.headCountKv },
        (ctxSize || m.gguf.contextLength || 4096) * parallel,
      ),
      pinned: m.pinned,
      launch: { name: m.name, path: m.path, args: m.args, embedding: m.embedding, mmproj: m.mmproj },
    };
  };

  const scheduler = new Scheduler({
    makeRunner: (model, ctxSize) =>
      new Runner({
        model: model.name,
        binary: binary.path,
        args: runnerArgs(model.launch, { globalArgs: config.llama_server.args, ctxSize, parallel: model.parallel }),
        logFile: join(resolve(cwd, config.logs_dir), `${safeFileName(model.name)}.log`),
        startupTimeoutMs: parseDuration(config.llama_server.startup_timeout),
        stopTimeoutMs: parseDuration(config.llama_server.stop_timeout),
        env,
      }),
  });

  const app = await buildApp({
    api: { catalog, scheduler, config: () => config, schedulable },
    logger: opts.logger,
    bodyLimit: config.server.body_limit,
    // The store's own probe replaces the data-dir write check once the store is wired in.
    readiness: [configCheck(() => config), writableDirCheck('store', () => resolve(cwd, config.data_dir)), binaryCheck(() => binary.path)],
  });

  return {
    app,
    scheduler,
    catalog,
    binary,
    config: () => config,
    loaded,
    async close() {
      await app.close();
      await scheduler.shutdown();
    },
  };
}
