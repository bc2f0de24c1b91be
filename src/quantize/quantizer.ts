import { randomBytes } from 'node:crypto';
import { mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { sha256File } from '../catalog/digest.js';
import { readGguf } from '../catalog/gguf.js';
import { NotImplemented, ShuttingDown } from '../errors.js';
import type { OllamaStore } from '../ollama-store/store.js';
import type { Backend } from '../provision/detect.js';
import { findLlamaTool, isExecutable } from '../provision/llama-binary.js';
import { processAlive } from '../runner/pid-registry.js';
import type { PidRecorder } from '../runner/runner.js';
import { runLlamaQuantize } from './llama-quantize.js';
import type { QuantizeType } from './types.js';

export interface QuantizerDeps {
  /** The llama-server in use: the llama-quantize of the same build is looked for beside it first. */
  binary(): string;
  /** Which provisioned backend to look in next (config llama_server.backend). */
  backend(): Backend | 'auto';
  /** A prefix that kills the child when Corral dies (setpriv --pdeathsig), when the machine has one. */
  launcher(): string[] | undefined;
  /** Corral's environment, for finding the tool on PATH. */
  env: NodeJS.ProcessEnv;
  /** The child's environment: what llama.cpp reads, none of Corral's secrets. */
  childEnv(): NodeJS.ProcessEnv;
  /** Where children are recorded, so that a start after a crash of Corral stops one left running. */
  pids?: PidRecorder | undefined;
}

/** One progress line, in Ollama's ProgressResponse shape. */
export interface QuantizeProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface QuantizeJob {
  /** The GGUF to quantize (shard 1 of a split model: llama-quantize reads the rest and writes one file). */
  input: string;
  /** Bytes of the input, all shards: the progress lines' total. */
  size: number;
  /** Its file type (F32, F16, BF16). */
  sourceType: string;
  type: QuantizeType;
  /** The result becomes a blob of this store. */
  store: OllamaStore;
  emit(p: QuantizeProgress): void;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
}

/** The digest field of Ollama's quantizing lines: a placeholder, the new layer's digest is not known yet. */
const PLACEHOLDER_DIGEST = '0000000000000000000';
const SCRATCH = /^quantize-(.+)-(\d+)-[0-9a-f]{12}\.tmp$/;

/**
 * Runs llama-quantize for /api/create. Each run writes to a scratch file in the store's blobs directory
 * (named after this host and process, so a later Corral can tell a dead run's leftovers from a live
 * one's), which becomes the blob `sha256-<hex>` only when it is complete and reads as a GGUF. A run
 * whose client leaves, or that is running when Corral closes, is killed and its scratch file removed.
 */
export class Quantizer {
  private readonly running = new Set<Promise<unknown>>();
  private readonly closing = new AbortController();

  constructor(private readonly deps: QuantizerDeps) {}

  /** llama-quantize beside llama-server (the link and what it points to), then on PATH or in the cache. */
  async tool(): Promise<string> {
    const binary = this.deps.binary();
    const dirs = [dirname(binary), dirname(await realpath(binary).catch(() => binary))];
    for (const dir of dirs) {
      const beside = join(dir, 'llama-quantize');
      if (await isExecutable(beside)) return beside;
    }
    const found = await findLlamaTool('llama-quantize', { env: this.deps.env, backend: this.deps.backend() });
    if (found) return found;
    throw new NotImplemented(
      `quantizing needs llama-quantize, which is not beside ${binary}, on PATH or in Corral's cache: run \`corral provision\``,
    );
  }

  /** Quantizes `job.input` into a blob of `job.store`; resolves to the blob's digest and size. */
  async quantize(job: QuantizeJob): Promise<{ digest: string; size: number }> {
    if (this.closing.signal.aborted) throw this.closing.signal.reason;
    const run = this.run(job);
    const tracked = run.catch(() => undefined);
    this.running.add(tracked);
    try {
      return await run;
    } finally {
      this.running.delete(tracked);
    }
  }

  private async run(job: QuantizeJob): Promise<{ digest: string; size: number }> {
    const tool = await this.tool();
    const { store } = job;
    await mkdir(store.blobsDir, { recursive: true });
    const scratch = join(store.blobsDir, `quantize-${hostname()}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    const status = `quantizing ${job.sourceType} model to ${job.type.requested}`;
    const progress = (completed: number): void =>
      job.emit({ status, digest: PLACEHOLDER_DIGEST, total: job.size, completed });
    const signal = AbortSignal.any([job.signal, this.closing.signal]);
    try {
      progress(0);
      await runLlamaQuantize({
        tool,
        input: job.input,
        output: scratch,
        type: job.type.type,
        launcher: this.deps.launcher(),
        env: this.deps.childEnv(),
        signal,
        onProgress: (done, total) => progress(Math.floor((job.size * done) / total)),
        onSpawn: (pid) => this.deps.pids?.add(pid, { model: `quantize ${job.input}`, binary: tool }),
        onExit: (pid) => this.deps.pids?.remove(pid),
      });
      job.emit({ status: 'verifying conversion' });
      await readGguf(scratch);
      const digest = await sha256File(scratch);
      const { size } = await stat(scratch);
      // Hashing a large result takes a while: a client that left meanwhile gets no model either.
      signal.throwIfAborted();
      // Blobs are content-addressed: one that is there already is this very file.
      if (!(await store.hasBlob(digest))) await rename(scratch, store.blobFile(digest));
      return { digest, size };
    } finally {
      await rm(scratch, { force: true });
    }
  }

  /** Cancels every run and waits until their children have exited and their scratch files are gone. */
  async close(): Promise<void> {
    this.closing.abort(new ShuttingDown('quantizing was cancelled: Corral is shutting down'));
    await Promise.all(this.running);
  }

  /**
   * Removes scratch files a Corral on this host left when it was killed mid-run (its llama-quantize died
   * with it: see the launcher). Those of a process that is still running are left alone.
   */
  async sweep(store: OllamaStore): Promise<string[]> {
    const names = await readdir(store.blobsDir).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const name of names) {
      const m = SCRATCH.exec(name);
      if (!m || m[1] !== hostname() || processAlive(Number(m[2]))) continue;
      await rm(join(store.blobsDir, name), { force: true });
      removed.push(name);
    }
    return removed;
  }
}
