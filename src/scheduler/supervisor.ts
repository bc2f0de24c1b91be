import type { RunnerFailure } from '../runner/runner.js';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  maxRestarts: number;
  /** A run this long, or a quiet period this long since the last failure, forgives past failures. */
  resetAfterMs: number;
}

export interface FailureRecord {
  name: string;
  failure: RunnerFailure;
  /** Consecutive failures without a stable run in between. */
  consecutive: number;
  /** True once `consecutive` reached max_restarts: no automatic restarts, requests get the error. */
  gaveUp: boolean;
  /** How the model was set up when it last failed (the scheduler's fingerprint of its launch). */
  fingerprint?: string | undefined;
}

/**
 * Per-model crash bookkeeping: exponential backoff for restarts and a circuit breaker for
 * crash loops. Knows nothing about processes; the scheduler reports and asks.
 */
export class Supervisor {
  private readonly records = new Map<string, FailureRecord>();
  private readonly readyAt = new Map<string, number>();

  constructor(
    private readonly policy: () => BackoffPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  ready(name: string): void {
    this.readyAt.set(name, this.now());
  }

  /** Records a failure; returns the delay before an automatic restart, or undefined after giving up. */
  failed(
    name: string,
    failure: RunnerFailure,
    fingerprint?: string,
  ): { delayMs: number | undefined; record: FailureRecord } {
    const p = this.policy();
    const now = this.now();
    const upSince = this.readyAt.get(name);
    this.readyAt.delete(name);
    let rec = this.records.get(name);
    const stableRun = upSince !== undefined && now - upSince >= p.resetAfterMs;
    const quiet = rec !== undefined && now - rec.failure.at.getTime() >= p.resetAfterMs;
    if (!rec || stableRun || quiet) rec = { name, failure, consecutive: 0, gaveUp: false };
    rec.failure = failure;
    rec.fingerprint = fingerprint;
    rec.consecutive++;
    rec.gaveUp = rec.consecutive >= p.maxRestarts;
    this.records.set(name, rec);
    if (rec.gaveUp) return { delayMs: undefined, record: rec };
    return { delayMs: Math.min(p.maxMs, p.initialMs * 2 ** (rec.consecutive - 1)), record: rec };
  }

  /**
   * A crash-looping model's error, while the breaker is open. After reset_after without a new
   * failure one attempt is let through again (a failure re-opens the breaker at once).
   */
  blocked(name: string): string | undefined {
    const rec = this.records.get(name);
    if (!rec?.gaveUp) return undefined;
    if (this.now() - rec.failure.at.getTime() >= this.policy().resetAfterMs) return undefined;
    return `model "${name}" is crash-looping (${rec.consecutive} failures in a row) and will not be restarted for now; last error: ${rec.failure.reason}`;
  }

  /** Forgets a model's history, e.g. after its config changed or it was loaded successfully by hand. */
  reset(name: string): void {
    this.records.delete(name);
  }

  /**
   * Forgets the history of every model now set up differently from when it failed, or gone: a fixed
   * config gets a fresh start whether or not the model has a process. Returns their names.
   */
  forgetChanged(current: (name: string) => { fingerprint?: string | undefined } | undefined): string[] {
    const forgotten: string[] = [];
    for (const rec of [...this.records.values()]) {
      const now = current(rec.name);
      if (now && (now.fingerprint ?? '') === (rec.fingerprint ?? '')) continue;
      this.records.delete(rec.name);
      forgotten.push(rec.name);
    }
    return forgotten;
  }

  failures(): FailureRecord[] {
    return [...this.records.values()];
  }
}
