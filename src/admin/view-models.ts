import { totalmem } from 'node:os';
import { parseSize } from '../config/duration.js';
import type { CatalogModel } from '../catalog/catalog.js';
import type { AdminDeps } from './deps.js';

export interface ModelRow {
  name: string;
  state: 'stopped' | 'starting' | 'ready' | 'stopping' | 'failed';
  reason: string | undefined;
  memory: string;
  memoryBytes: number;
  loadedAt: string | undefined;
  expiresAt: string | undefined;
  inFlight: number;
  queued: number;
  pid: number | undefined;
  pinned: boolean;
}

export interface Dashboard {
  models: ModelRow[];
  /** What the catalogue wants the operator to know: files skipped, and which name won a clash. */
  notes: readonly string[];
  loadedCount: number;
  maxLoaded: string;
  memoryUsed: string;
  memoryBudget: string;
  memoryPercent: number | undefined;
}

export interface FailureNote {
  reason: string;
  at: Date;
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatTime(d: Date | undefined): string | undefined {
  if (!d || Number.isNaN(d.getTime())) return undefined;
  if (d.getUTCFullYear() > 2200) return 'never';
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function estimate(deps: AdminDeps, m: CatalogModel): number {
  try {
    return deps.schedulable(m).memoryBytes;
  } catch {
    return m.size;
  }
}

/**
 * The scheduler is being extended in parallel (memory budget, failure info, status()); everything
 * the dashboard reads from it goes through here, reading optional parts defensively.
 */
export function buildDashboard(deps: AdminDeps, failures: Map<string, FailureNote>): Dashboard {
  const loaded = new Map(deps.scheduler.loaded().map((l) => [l.name, l]));
  const status = (
    deps.scheduler as unknown as { status?: () => { memoryBudgetBytes?: number; memoryUsedBytes?: number } }
  ).status?.();
  let used = 0;
  const models: ModelRow[] = deps.catalog.list().map((m) => {
    const l = loaded.get(m.name);
    const memoryBytes = estimate(deps, m);
    const failure = failures.get(m.name);
    let state: ModelRow['state'] = l ? l.runner.state : failure ? 'failed' : 'stopped';
    let reason = state === 'failed' ? (l?.runner.failure?.reason ?? failure?.reason) : undefined;
    if (l && l.runner.state === 'stopped' && failure) {
      state = 'failed';
      reason = failure.reason;
    }
    if (l && (state === 'ready' || state === 'starting')) used += memoryBytes;
    return {
      name: m.name,
      state,
      reason,
      memory: formatBytes(memoryBytes),
      memoryBytes,
      loadedAt: formatTime(l?.loadedAt),
      expiresAt: l && state === 'ready' ? formatTime(l.expiresAt) : undefined,
      inFlight: l?.inFlight ?? 0,
      queued: l?.queued ?? 0,
      pid: l?.runner.pid,
      pinned: m.pinned,
    };
  });
  const config = deps.config();
  let budget = status?.memoryBudgetBytes;
  if (budget === undefined) {
    const raw = config.scheduler.memory_budget;
    if (typeof raw === 'number') budget = raw;
    else if (raw === 'auto') budget = Math.floor(totalmem() * config.scheduler.memory_fraction);
    else {
      try {
        budget = parseSize(raw);
      } catch {
        budget = undefined;
      }
    }
  }
  if (status?.memoryUsedBytes !== undefined) used = status.memoryUsedBytes;
  return {
    models,
    notes: deps.catalog.warnings,
    loadedCount: loaded.size,
    maxLoaded: config.scheduler.max_loaded_models === 0 ? 'no limit' : String(config.scheduler.max_loaded_models),
    memoryUsed: formatBytes(used),
    memoryBudget:
      budget === undefined
        ? 'unknown'
        : budget === 0
          ? 'no limit'
          : `${formatBytes(budget)}${config.scheduler.memory_budget === 'auto' ? ` (auto, ${Math.round(config.scheduler.memory_fraction * 100)}% of RAM)` : ''}`,
    memoryPercent: budget ? Math.min(100, Math.round((used / budget) * 100)) : undefined,
  };
}
