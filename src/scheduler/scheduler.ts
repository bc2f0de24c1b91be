import { EventEmitter } from 'node:events';
import {
  InsufficientMemory,
  ModelLoadFailed,
  QueueFull,
  RunnerCrashed,
  ShuttingDown,
  UpstreamUnreachable,
} from '../errors.js';
import type { LlamaClient } from '../llama/client.js';
import type { RunnerFailure } from '../runner/runner.js';
import { planRoom, rivals } from './eviction.js';
import { Supervisor } from './supervisor.js';
import { abortable, nextEvent } from './abortable.js';
import { armExpiry, clearExpiry } from './keep-alive.js';
import { asResident, describeEntry, dispatchLimit, enqueue, isBusy, type Entry } from './entry.js';
import { RestartTimers } from './restart-timers.js';
import { exitHandled, neverSent } from './never-sent.js';
import {
  DEFAULT_POLICY,
  type SchedulableModel,
  type AcquireOptions,
  type Lease,
  type LeaseInfo,
  type LoadedModel,
  type SchedulerStatus,
  type SchedulerPolicy,
  type SchedulerEvents,
  type SchedulerDeps,
} from './types.js';

/**
 * Decides which runners are loaded and who may use them. Never two loads of one model at once;
 * each model has `parallel` slots and a bounded queue behind them; loads are admitted one at a
 * time against max_loaded_models, the memory budget and swap groups, evicting idle models LRU.
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  private draining = false;
  private readonly now: () => number;
  private readonly supervisor: Supervisor;
  private readonly restarts = new RestartTimers();
  /** Serialises admission decisions; otherwise two loads could each count on the same free room. */
  private admission: Promise<void> = Promise.resolve();
  /** Evicted runners still exiting when the load they made room for went ahead (overlapEviction). */
  private readonly exiting = new Set<Promise<unknown>>();

  constructor(private readonly deps: SchedulerDeps) {
    super();
    this.setMaxListeners(0);
    this.now = deps.now ?? Date.now;
    this.supervisor = new Supervisor(() => this.policy().backoff, this.now);
  }

  private policy(): SchedulerPolicy {
    return this.deps.policy?.() ?? DEFAULT_POLICY;
  }

  /**
   * Runs `fn` with the client of a ready child of `model`, holding one of its slots until `fn` settles.
   * A child can die after it was leased but before it was reached: its socket refuses the connection
   * while the gateway has not yet handled the exit. Such a request never reached llama-server, so once
   * the exit is handled (the crashed runner forgotten) `fn` runs once more on a fresh runner, instead of
   * failing with 502 where a retry a few milliseconds later would succeed. Only a request that never
   * left the gateway counts: one whose connection broke later may be what crashed the child, and must
   * not crash the next one too. So `fn` may run twice, and must not have answered its client when it
   * throws such an error (it has not: nothing was received to answer with).
   */
  async withLease<T>(
    model: SchedulableModel,
    opts: AcquireOptions,
    fn: (client: LlamaClient, lease: LeaseInfo) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { lease, runner } = await this.acquireRunner(model, opts);
      try {
        const client = lease.client;
        if (!client)
          throw new UpstreamUnreachable(
            `llama-server for model "${model.name}" exited before the request reached it`,
            false,
          );
        const value = await fn(client, lease);
        lease.release();
        return value;
      } catch (err) {
        lease.release();
        if (attempt > 1 || opts.signal?.aborted || !neverSent(err)) throw err;
        if (!(await exitHandled(runner, opts.signal))) throw err;
        this.emit('retried', model.name);
      }
    }
  }

  /** A slot on `model`'s runner, held until `release()` (see acquireRunner). */
  async acquire(model: SchedulableModel, opts: AcquireOptions = {}): Promise<Lease> {
    return (await this.acquireRunner(model, opts)).lease;
  }

  /**
   * Waits for a slot on `model`'s runner, loading it first if needed. A request queued here when the
   * runner crashes never reached it: it is queued once more, on the fresh runner the retry starts.
   * Once only, so a model that keeps crashing fails its requests instead of cycling them.
   */
  private async acquireRunner(model: SchedulableModel, opts: AcquireOptions): Promise<Granted> {
    try {
      return await this.acquireOnce(model, opts);
    } catch (err) {
      if (!(err instanceof RunnerCrashed) || opts.signal?.aborted) throw err;
      return this.acquireOnce(model, opts);
    }
  }

  private async acquireOnce(model: SchedulableModel, opts: AcquireOptions): Promise<Granted> {
    this.refuseEarly(model);
    const began = this.now();
    const ctxSize = opts.numCtx && opts.numCtx > 0 ? opts.numCtx : model.ctxSize;
    const numGpu = opts.numGpu !== undefined && opts.numGpu >= 0 ? Math.floor(opts.numGpu) : undefined;
    let found = this.entries.get(model.name);
    const restart = this.restartReason(found, ctxSize, numGpu);
    if (found && restart) {
      await this.unload(model.name, restart);
      found = this.entries.get(model.name);
    }
    const entry = found ?? this.createEntry(model, ctxSize, numGpu);
    // Checked and counted in one step: concurrent requests cannot both take the last place.
    if (entry.inFlight + entry.queue.length + entry.pending >= entry.model.parallel + entry.model.queueSize) {
      throw new QueueFull(
        `server busy, please try again: model "${model.name}" has ${entry.inFlight} requests running and ${entry.queue.length + entry.pending} waiting (maximum pending requests exceeded)`,
        1,
      );
    }
    entry.lastUsed = this.now();
    clearExpiry(entry);
    entry.pending++;
    this.emit('changed');
    let loadDurationMs = 0;
    try {
      if (entry.runner.state !== 'ready') {
        entry.loading ??= this.startEntry(entry);
        const loadStart = this.now();
        await abortable(entry.loading, opts.signal);
        loadDurationMs = this.now() - loadStart;
      }
      if (this.entries.get(model.name) !== entry || entry.runner.state !== 'ready') {
        throw new ModelLoadFailed(
          entry.runner.failure?.reason ?? `model "${model.name}" was unloaded while the request waited for it`,
        );
      }
    } finally {
      entry.pending--;
    }
    return this.grant(entry, opts, began, loadDurationMs);
  }

  /** Refuses a request at once while shutting down, or for a model that is crash-looping. */
  private refuseEarly(model: SchedulableModel): void {
    if (this.closed || this.draining) throw new ShuttingDown('Corral is shutting down');
    const blocked = this.supervisor.blocked(model.name);
    if (blocked) throw new ModelLoadFailed(blocked);
  }

  /**
   * num_ctx policy: a larger context than the running process has restarts it while idle; a smaller or
   * equal one reuses it (llama-server's context is fixed per process, and a restart of a busy model
   * would break its requests, so a busy one is reused as is).
   */
  /**
   * Why an idle model's process must restart before this request, if it must. llama-server's context
   * is fixed per process: a larger num_ctx than it has restarts it, a smaller or equal one reuses it;
   * so does a request naming another num_gpu (Ollama's layers on the GPU). A busy model is reused as
   * it is, since a restart would break its requests.
   */
  private restartReason(entry: Entry | undefined, ctxSize: number, numGpu: number | undefined): string | undefined {
    if (entry === undefined || isBusy(entry)) return undefined;
    if (entry.stale !== undefined) return entry.stale;
    if (entry.ctxSize < ctxSize) return 'context size change';
    if (numGpu !== undefined && entry.numGpu !== numGpu) return 'num_gpu change';
    return undefined;
  }

  /** A slot on a ready entry, now or when one frees up. */
  private async grant(entry: Entry, opts: AcquireOptions, began: number, loadDurationMs: number): Promise<Granted> {
    const queueStart = this.now();
    if (entry.inFlight >= dispatchLimit(entry.model)) {
      await enqueue(entry, opts.signal, () => this.emit('changed')).catch((err: unknown) => {
        this.settle(entry);
        throw err;
      });
    } else {
      entry.inFlight++;
    }
    const queueWaitMs = this.now() - queueStart;
    entry.keepAliveMs = opts.keepAliveMs ?? entry.model.keepAliveMs;
    this.emit('changed');
    let released = false;
    const lease: Lease = {
      client: entry.runner.client,
      loadDurationMs,
      queueWaitMs: loadDurationMs > 0 ? Math.max(0, queueWaitMs) : this.now() - began - loadDurationMs,
      release: () => {
        if (released) return;
        released = true;
        this.release(entry);
      },
    };
    return { lease, runner: entry.runner };
  }

  private createEntry(model: SchedulableModel, ctxSize: number, numGpu?: number): Entry {
    const runner = this.deps.makeRunner(model, ctxSize, { numGpu });
    const entry: Entry = {
      model,
      runner,
      ctxSize,
      numGpu,
      memoryBytes: model.memoryAt?.(ctxSize) ?? model.memoryBytes,
      inFlight: 0,
      queue: [],
      pending: 0,
      keepAliveMs: model.keepAliveMs,
      expiresAt: undefined,
      timer: undefined,
      lastUsed: this.now(),
      loading: undefined,
      admitted: false,
      stale: undefined,
    };
    runner.on('exit', ({ expected }) => {
      if (!expected) this.forget(entry, CRASHED);
    });
    runner.on('state', (state) => {
      if (state === 'ready') this.supervisor.ready(model.name);
      if (state === 'failed' && runner.failure) this.onFailure(entry, runner.failure);
      this.emit('changed');
    });
    this.entries.set(model.name, entry);
    return entry;
  }

  private async startEntry(entry: Entry): Promise<void> {
    const started = this.now();
    let ok = false;
    try {
      await this.admit(entry);
      if (this.entries.get(entry.model.name) !== entry)
        throw new ModelLoadFailed(`model "${entry.model.name}" was unloaded before it finished loading`);
      await entry.runner.start();
      ok = true;
      this.restarts.cancel(entry.model.name);
      this.emit('loaded', entry.model.name, this.now() - started);
    } catch (err) {
      this.forget(entry, 'load failed');
      throw err;
    } finally {
      entry.loading = undefined;
      // Every waiter may have given up during the load; the keep_alive clock must still start.
      if (ok) this.settle(entry);
    }
  }

  /** Makes room for `entry` under the admission lock, then marks it as counting against the limits. */
  private admit(entry: Entry): Promise<void> {
    const run = this.admission.then(async () => {
      await this.makeRoom(entry);
      entry.admitted = true;
    });
    this.admission = run.catch(() => {});
    return run;
  }

  private async makeRoom(entry: Entry): Promise<void> {
    const name = entry.model.name;
    const deadline = this.now() + this.policy().evictionWaitMs;
    for (;;) {
      if (this.entries.get(name) !== entry) return;
      const policy = this.policy();
      const residents = [...this.entries.values()].filter((e) => e !== entry && e.admitted).map(asResident);
      const plan = planRoom(
        { name, memoryBytes: entry.memoryBytes, exclusiveWith: rivals(name, policy.groups) },
        residents,
        policy,
      );
      if (plan.kind === 'never') throw new InsufficientMemory(plan.reason);
      if (plan.kind === 'fits') {
        // unload() forgets each victim at once, so they stop counting against the limits before their exit.
        const stops = Promise.all(plan.evict.map((victim) => this.unload(victim, `evicted for "${name}"`)));
        if (policy.overlapEviction) this.untilExited(stops);
        else await stops;
        return;
      }
      const remaining = deadline - this.now();
      if (remaining <= 0) {
        throw new QueueFull(
          `server busy, please try again: no room to load model "${name}" (${plan.reason})`,
          Math.ceil(policy.evictionWaitMs / 1000),
        );
      }
      await nextEvent(this, 'changed', remaining);
    }
  }

  /** Keeps a stop that nobody awaits where shutdown() finds it: the gateway never leaves a child behind. */
  private untilExited(stop: Promise<unknown>): void {
    const tracked = stop.catch(() => {}).finally(() => this.exiting.delete(tracked));
    this.exiting.add(tracked);
  }

  private onFailure(entry: Entry, failure: RunnerFailure): void {
    const name = entry.model.name;
    const { delayMs, record } = this.supervisor.failed(name, failure, entry.model.fingerprint);
    this.emit('failed', name, record);
    if (delayMs === undefined) {
      this.emit('gave-up', name, record);
      return;
    }
    const model = this.deps.resolve?.(name) ?? entry.model;
    if (!model.pinned || this.closed || this.draining) return;
    this.restarts.set(name, delayMs, () => {
      if (this.closed || this.draining || this.entries.has(name)) return;
      const current = this.deps.resolve?.(name) ?? model;
      if (!current.pinned) return;
      this.emit('restarting', name, record.consecutive);
      // A failure re-enters onFailure through the runner's state event, which schedules the next try.
      this.load(current).catch(() => {});
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
    this.settle(entry);
    this.emit('changed');
  }

  /** Called whenever an entry may have become idle: restart it if stale, else start its keep_alive clock. */
  private settle(entry: Entry): void {
    if (isBusy(entry) || this.entries.get(entry.model.name) !== entry || entry.runner.state !== 'ready') return;
    if (entry.stale !== undefined) {
      const name = entry.model.name;
      const why = entry.stale;
      void this.unload(name, why).then(() => {
        const next = this.deps.resolve?.(name);
        // A model restarted for new settings comes back with them; one removed from the config stays stopped.
        const back = next?.pinned || (next !== undefined && why === CONFIG_CHANGED);
        if (back && !this.closed && !this.draining) this.load(next).catch(() => {});
      });
      return;
    }
    armExpiry(entry, this.now, (reason) => void this.unload(entry.model.name, reason));
  }

  private forget(entry: Entry, reason: string): void {
    if (this.entries.get(entry.model.name) !== entry) return;
    clearExpiry(entry);
    this.entries.delete(entry.model.name);
    const ErrorClass = reason === CRASHED ? RunnerCrashed : ModelLoadFailed;
    for (const w of entry.queue.splice(0)) w.reject(new ErrorClass(`model "${entry.model.name}" ${reason}`));
    this.emit('unloaded', entry.model.name, reason);
    this.emit('changed');
  }

  /** Loads a model without serving a request (empty prompt, pinned models); keep_alive applies afterwards. */
  async load(model: SchedulableModel, keepAliveMs?: number): Promise<number> {
    const lease = await this.acquire(model, { keepAliveMs });
    lease.release();
    return lease.loadDurationMs;
  }

  /** Loads every pinned model that is not loaded yet; failures go through supervision. */
  async loadPinned(models: SchedulableModel[]): Promise<void> {
    await Promise.allSettled(
      models
        .filter((m) => m.pinned && !this.entries.has(m.name) && !this.restarts.has(m.name))
        .map((m) => this.load(m)),
    );
  }

  /** Stops a model's runner. Requests still running on it fail; callers decide whether to wait first. */
  async unload(name: string, reason = 'unloaded'): Promise<boolean> {
    const entry = this.entries.get(name);
    if (!entry) return false;
    this.forget(entry, reason);
    await entry.runner.stop();
    return true;
  }

  /**
   * Applies a config change: models that disappeared or would now start differently restart (or
   * stop) once idle, and lose their crash history; the rest only pick up their new policy.
   */
  reconcile(): string[] {
    const changes: string[] = [];
    for (const entry of [...this.entries.values()]) {
      const name = entry.model.name;
      const next = this.deps.resolve?.(name);
      if (!next) {
        entry.stale = 'removed from config';
      } else if ((next.fingerprint ?? '') !== (entry.model.fingerprint ?? '')) {
        entry.stale = CONFIG_CHANGED;
        this.supervisor.reset(name);
      } else {
        entry.model = next;
        continue;
      }
      changes.push(`${name}: ${entry.stale}, ${isBusy(entry) ? 'restarts when idle' : 'restarting now'}`);
      this.settle(entry);
    }
    // A model that failed and has no process (a crash loop, a load that failed) starts afresh too.
    for (const name of this.supervisor.forgetChanged((n) => this.deps.resolve?.(n))) {
      if (this.entries.has(name)) continue;
      this.restarts.cancel(name);
      changes.push(`${name}: set up differently, its failures are forgotten`);
    }
    return changes;
  }

  loaded(): LoadedModel[] {
    return [...this.entries.values()].map((e) => describeEntry(e, this.now()));
  }

  status(): SchedulerStatus {
    const policy = this.policy();
    const live = [...this.entries.values()].filter((e) => e.admitted);
    return {
      memoryBudgetBytes: policy.memoryBudget,
      memoryUsedBytes: live.reduce((sum, e) => sum + e.memoryBytes, 0),
      maxLoadedModels: policy.maxLoadedModels,
      loadedCount: live.length,
      failures: this.supervisor
        .failures()
        .map((f) => ({ ...f, blocked: this.supervisor.blocked(f.name) !== undefined })),
    };
  }

  /** Refuses new work and waits (bounded) for running and queued requests to finish. Returns true when drained. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    this.restarts.cancelAll();
    const deadline = this.now() + timeoutMs;
    for (;;) {
      if (![...this.entries.values()].some((e) => e.inFlight > 0 || e.queue.length > 0 || e.pending > 0)) return true;
      const remaining = deadline - this.now();
      if (remaining <= 0) return false;
      await nextEvent(this, 'changed', remaining);
    }
  }

  /** Stops accepting work and stops every runner. */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.restarts.cancelAll();
    await Promise.all([...this.entries.keys()].map((name) => this.unload(name, 'shutdown')));
    await Promise.all(this.exiting);
  }
}

const CRASHED = 'crashed';
const CONFIG_CHANGED = 'config changed';

interface Granted {
  lease: Lease;
  runner: Entry['runner'];
}
