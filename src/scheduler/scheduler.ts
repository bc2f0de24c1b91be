import { EventEmitter } from 'node:events';
import { ClientGone, QueueFull, ShuttingDown } from '../errors.js';
import type { Runner } from '../runner/runner.js';
import type { RunnerModel } from '../runner/args.js';

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
  pinned: boolean;
  /** What the runner factory needs to build the command line; opaque to the scheduler. */
  launch: RunnerModel;
}

export interface AcquireOptions {
  /** Request keep_alive in ms (Infinity = never unload, 0 = unload after the request). */
  keepAliveMs?: number | undefined;
  numCtx?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface Lease {
  runner: Runner;
  /** Time spent waiting for the model to load for this request (0 when already loaded). */
  loadDurationMs: number;
  /** Time spent waiting for a free slot. */
  queueWaitMs: number;
  release(): void;
}

export interface LoadedModel {
  name: string;
  runner: Runner;
  ctxSize: number;
  inFlight: number;
  queued: number;
  expiresAt: Date | undefined;
  loadedAt: Date | undefined;
}

export interface SchedulerEvents {
  loaded: [name: string, durationMs: number];
  unloaded: [name: string, reason: string];
  changed: [];
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

interface Entry {
  model: SchedulableModel;
  runner: Runner;
  ctxSize: number;
  inFlight: number;
  queue: Waiter[];
  keepAliveMs: number;
  expiresAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  lastUsed: number;
  loading: Promise<void> | undefined;
}

export interface SchedulerDeps {
  makeRunner(model: SchedulableModel, ctxSize: number): Runner;
  now?: () => number;
}

/**
 * Decides which runners are loaded and who may use them. Never two loads of one model at once;
 * each model has `parallel` slots and a bounded queue behind them.
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly deps: SchedulerDeps) {
    super();
    this.now = deps.now ?? Date.now;
  }

  async acquire(model: SchedulableModel, opts: AcquireOptions = {}): Promise<Lease> {
    if (this.closed) throw new ShuttingDown('Corral is shutting down');
    const began = this.now();
    const ctxSize = opts.numCtx && opts.numCtx > 0 ? opts.numCtx : model.ctxSize;
    let entry = this.entries.get(model.name);
    if (entry && entry.ctxSize < ctxSize && entry.inFlight === 0 && entry.queue.length === 0 && !entry.loading) {
      // A larger context than the running process has: restart it while idle. A smaller or equal one reuses it.
      await this.unload(model.name, 'context size change');
      entry = undefined;
    }
    entry ??= this.createEntry(model, ctxSize);
    entry.lastUsed = this.now();
    this.clearTimer(entry);

    let loadDurationMs = 0;
    if (entry.runner.state !== 'ready') {
      entry.loading ??= this.startEntry(entry);
      const loadStart = this.now();
      try {
        await abortable(entry.loading, opts.signal);
      } catch (err) {
        if (this.entries.get(model.name) === entry && entry.runner.state === 'failed') this.forget(entry, 'load failed');
        throw err;
      }
      loadDurationMs = this.now() - loadStart;
    }

    const queueStart = this.now();
    if (entry.inFlight >= entry.model.parallel) {
      if (entry.queue.length >= entry.model.queueSize) {
        throw new QueueFull(`server busy: model "${model.name}" has ${entry.inFlight} requests running and ${entry.queue.length} queued, please retry`, 1);
      }
      await this.waitForSlot(entry, opts.signal);
    } else {
      entry.inFlight++;
    }
    const queueWaitMs = this.now() - queueStart;
    if (opts.keepAliveMs !== undefined) entry.keepAliveMs = opts.keepAliveMs;
    else entry.keepAliveMs = model.keepAliveMs;
    this.emit('changed');
    let released = false;
    return {
      runner: entry.runner,
      loadDurationMs,
      queueWaitMs: loadDurationMs > 0 ? Math.max(0, queueWaitMs) : this.now() - began - loadDurationMs,
      release: () => {
        if (released) return;
        released = true;
        this.release(entry);
      },
    };
  }

  private createEntry(model: SchedulableModel, ctxSize: number): Entry {
    const runner = this.deps.makeRunner(model, ctxSize);
    const entry: Entry = {
      model, runner, ctxSize, inFlight: 0, queue: [], keepAliveMs: model.keepAliveMs,
      expiresAt: undefined, timer: undefined, lastUsed: this.now(), loading: undefined,
    };
    runner.on('exit', ({ expected }) => {
      if (!expected && this.entries.get(model.name) === entry) this.forget(entry, 'crashed');
    });
    runner.on('state', () => this.emit('changed'));
    this.entries.set(model.name, entry);
    return entry;
  }

  private async startEntry(entry: Entry): Promise<void> {
    const started = this.now();
    try {
      await entry.runner.start();
      this.emit('loaded', entry.model.name, this.now() - started);
    } finally {
      entry.loading = undefined;
    }
  }

  private waitForSlot(entry: Entry, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const i = entry.queue.indexOf(waiter);
        if (i !== -1) entry.queue.splice(i, 1);
        this.emit('changed');
        reject(new ClientGone('client disconnected while queued'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      entry.queue.push(waiter);
      this.emit('changed');
    });
  }

  private release(entry: Entry): void {
    entry.lastUsed = this.now();
    const next = entry.queue.shift();
    if (next) {
      // The slot passes straight to the next waiter: inFlight stays the same.
      next.resolve();
      this.emit('changed');
      return;
    }
    entry.inFlight--;
    if (entry.inFlight === 0) this.armTimer(entry);
    this.emit('changed');
  }

  private armTimer(entry: Entry): void {
    this.clearTimer(entry);
    if (this.entries.get(entry.model.name) !== entry) return;
    if (entry.keepAliveMs === Infinity) {
      entry.expiresAt = undefined;
      return;
    }
    if (entry.keepAliveMs <= 0) {
      void this.unload(entry.model.name, 'keep_alive 0');
      return;
    }
    entry.expiresAt = this.now() + entry.keepAliveMs;
    // setTimeout caps at ~24.8 days; longer keep_alives simply re-arm.
    const delay = Math.min(entry.keepAliveMs, 2 ** 31 - 1);
    entry.timer = setTimeout(() => {
      if (entry.inFlight === 0 && entry.queue.length === 0) void this.unload(entry.model.name, 'keep_alive expired');
    }, delay);
    entry.timer.unref();
  }

  private clearTimer(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.expiresAt = undefined;
  }

  private forget(entry: Entry, reason: string): void {
    this.clearTimer(entry);
    if (this.entries.get(entry.model.name) === entry) this.entries.delete(entry.model.name);
    for (const w of entry.queue.splice(0)) w.reject(new Error(`model "${entry.model.name}" ${reason}`));
    this.emit('unloaded', entry.model.name, reason);
    this.emit('changed');
  }

  /** Loads a model without serving a request (empty prompt, pinned models); keep_alive applies afterwards. */
  async load(model: SchedulableModel, keepAliveMs?: number): Promise<number> {
    const lease = await this.acquire(model, { keepAliveMs });
    lease.release();
    return lease.loadDurationMs;
  }

  /** Stops a model's runner. Requests still running on it fail; callers decide whether to wait first. */
  async unload(name: string, reason = 'unloaded'): Promise<boolean> {
    const entry = this.entries.get(name);
    if (!entry) return false;
    this.forget(entry, reason);
    await entry.runner.dispose();
    return true;
  }

  loaded(): LoadedModel[] {
    return [...this.entries.values()].map((e) => ({
      name: e.model.name,
      runner: e.runner,
      ctxSize: e.ctxSize,
      inFlight: e.inFlight,
      queued: e.queue.length,
      expiresAt: e.inFlight > 0 || e.keepAliveMs === Infinity ? (e.keepAliveMs === Infinity ? FOREVER : new Date(this.now() + e.keepAliveMs)) : e.expiresAt !== undefined ? new Date(e.expiresAt) : undefined,
      loadedAt: e.runner.readyAt,
    }));
  }

  /** Stops accepting work and stops every runner. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries.keys()].map((name) => this.unload(name, 'shutdown')));
  }
}

/** What Ollama shows for a model that never expires (now + ~292 years, its max duration). */
const FOREVER = new Date(Date.UTC(2318, 0, 1));

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new ClientGone('client disconnected'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ClientGone('client disconnected while the model was loading'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
