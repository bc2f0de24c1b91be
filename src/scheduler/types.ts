/** The scheduler's public shapes: what callers pass in and what they get back. */
import type { LlamaClient } from '../llama/client.js';
import type { RunnerModel } from '../runner/args.js';
import type { RunnerEvents, RunnerFailure, RunnerState } from '../runner/runner.js';
import type { BackoffPolicy, FailureRecord } from './supervisor.js';

type Listener<K extends keyof RunnerEvents> = (...args: RunnerEvents[K]) => void;

/** What the scheduler uses of a runner (runner/runner.ts); scheduler unit tests give it a scripted one. */
export interface SupervisedRunner {
  readonly state: RunnerState;
  readonly pid: number | undefined;
  readonly readyAt: Date | undefined;
  readonly failure: RunnerFailure | undefined;
  readonly client: LlamaClient | undefined;
  /** The child's command line, for the admin UI. */
  readonly command: string[];
  start(): Promise<void>;
  stop(): Promise<void>;
  on<K extends keyof RunnerEvents>(event: K, listener: Listener<K>): unknown;
  once<K extends keyof RunnerEvents>(event: K, listener: Listener<K>): unknown;
  off<K extends keyof RunnerEvents>(event: K, listener: Listener<K>): unknown;
}

/** The scheduler's view of a model: only what policy needs. */
export interface SchedulableModel {
  name: string;
  path: string;
  parallel: number;
  queueSize: number;
  ctxSize: number;
  keepAliveMs: number;
  /** Estimated resident memory when loaded with ctxSize (see memory.ts). */
  memoryBytes: number;
  /** The estimate for another per-slot context (a request's num_ctx); defaults to memoryBytes. */
  memoryAt?: ((ctxSize: number) => number) | undefined;
  pinned: boolean;
  /** Changes whenever the process would start differently (binary, argv, file); a reload restarts on change. */
  fingerprint?: string | undefined;
  /** What the runner factory needs to build the command line; opaque to the scheduler. */
  launch: RunnerModel;
}

export interface AcquireOptions {
  /** Request keep_alive in ms (Infinity = never unload, 0 = unload after the request). */
  keepAliveMs?: number | undefined;
  numCtx?: number | undefined;
  /** Ollama's num_gpu: layers to offload (0 = CPU only). An idle model running with another value restarts. */
  numGpu?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** What a request learns about the slot it was given. */
export interface LeaseInfo {
  /** Time spent waiting for the model to load for this request (0 when already loaded). */
  loadDurationMs: number;
  /** Time spent waiting for a free slot. */
  queueWaitMs: number;
}

export interface Lease extends LeaseInfo {
  /** The child's client; undefined when it exited between the grant and this read. */
  client: LlamaClient | undefined;
  release(): void;
}

export interface LoadedModel {
  name: string;
  runner: SupervisedRunner;
  state: RunnerState;
  pid: number | undefined;
  ctxSize: number;
  inFlight: number;
  queued: number;
  /** Requests waiting for the model's load. */
  waitingForLoad: number;
  expiresAt: Date | undefined;
  loadedAt: Date | undefined;
  memoryBytes: number;
  pinned: boolean;
  /** Why the model will restart once idle (config changed or removed), if it will. */
  stale: string | undefined;
  failure: RunnerFailure | undefined;
}

export interface SchedulerStatus {
  memoryBudgetBytes: number;
  memoryUsedBytes: number;
  maxLoadedModels: number;
  loadedCount: number;
  failures: (FailureRecord & { blocked: boolean })[];
}

export interface SchedulerPolicy {
  /** 0 = no limit. */
  maxLoadedModels: number;
  /** Bytes; 0 = no limit. */
  memoryBudget: number;
  /** Exclusive swap groups, by normalised model name. */
  groups: Record<string, string[]>;
  /** How long a load waits for busy models to become evictable. */
  evictionWaitMs: number;
  /**
   * Start the next model while the llama-server it evicted is still exiting (14–25 ms for a small
   * model here) instead of after. Only safe where memory comes back by itself: RAM, not VRAM.
   */
  overlapEviction: boolean;
  backoff: BackoffPolicy;
}

export const DEFAULT_POLICY: SchedulerPolicy = {
  maxLoadedModels: 0,
  memoryBudget: 0,
  groups: {},
  evictionWaitMs: 60_000,
  overlapEviction: false,
  backoff: { initialMs: 1000, maxMs: 60_000, maxRestarts: 5, resetAfterMs: 300_000 },
};

export interface SchedulerEvents {
  loaded: [name: string, durationMs: number];
  unloaded: [name: string, reason: string];
  changed: [];
  /** A runner failed to start or crashed. */
  failed: [name: string, record: FailureRecord];
  /** A pinned model is being restarted after `delayMs` of backoff. */
  restarting: [name: string, attempt: number];
  /** A model reached max_restarts: no more automatic restarts; requests get its error. */
  'gave-up': [name: string, record: FailureRecord];
  /** A request never reached a child that had died; it runs once more on a fresh one (see withLease). */
  retried: [name: string];
}

export interface SchedulerDeps {
  makeRunner(model: SchedulableModel, ctxSize: number, load?: { numGpu?: number | undefined }): SupervisedRunner;
  now?: () => number;
  /** Read on every decision, so a config reload applies without rebuilding the scheduler. */
  policy?: () => SchedulerPolicy;
  /** The current definition of a model, for work no request drives (restarts, reloads). */
  resolve?: (name: string) => SchedulableModel | undefined;
}
