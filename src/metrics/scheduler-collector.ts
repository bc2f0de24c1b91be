import type { Scheduler } from '../scheduler/scheduler.js';
import type { CorralMetrics } from './registry.js';

/** Unload reasons that are not a policy decision. Anything else (keep_alive, limits, memory, groups) is an eviction. */
const NOT_EVICTION = new Set(['crashed', 'load failed', 'shutdown', 'unloaded']);
/** After these, the next load of the same model counts as a restart. */
const RESTARTING = /crash|context size|config|restart|settings/i;

export interface SchedulerCollector {
  /** Sets the point-in-time gauges; call just before rendering the registry. */
  refresh(): void;
  detach(): void;
}

/**
 * Counts scheduler events into the metrics and reads its point-in-time state at scrape time.
 * `memoryOf` is the scheduler's own estimate for a loaded model (the scheduler does not expose it).
 */
export function collectScheduler(
  scheduler: Scheduler,
  metrics: CorralMetrics,
  memoryOf: (model: string) => number | undefined,
): SchedulerCollector {
  const lastUnload = new Map<string, string>();
  const onLoaded = (name: string, ms: number): void => {
    metrics.loads.inc({ model: name });
    metrics.loadDuration.observe({ model: name }, ms / 1000);
    const previous = lastUnload.get(name);
    if (previous !== undefined && RESTARTING.test(previous)) metrics.restarts.inc({ model: name });
    lastUnload.delete(name);
  };
  const onUnloaded = (name: string, reason: string): void => {
    lastUnload.set(name, reason);
    metrics.unloads.inc({ model: name, reason });
    if (reason === 'crashed') metrics.crashes.inc({ model: name });
    else if (reason === 'load failed') metrics.loadFailures.inc({ model: name });
    else if (!NOT_EVICTION.has(reason)) metrics.evictions.inc({ model: name });
  };
  scheduler.on('loaded', onLoaded);
  scheduler.on('unloaded', onUnloaded);
  return {
    refresh() {
      const loaded = scheduler.loaded();
      // Models that left since the last scrape must disappear rather than report stale values.
      metrics.queueDepth.reset();
      metrics.inFlight.reset();
      metrics.modelMemory.reset();
      let running = 0;
      for (const l of loaded) {
        metrics.queueDepth.set({ model: l.name }, l.queued);
        metrics.inFlight.set({ model: l.name }, l.inFlight);
        if (l.runner.state === 'ready' || l.runner.state === 'starting') {
          running++;
          const bytes = memoryOf(l.name);
          if (bytes !== undefined) metrics.modelMemory.set({ model: l.name }, bytes);
        }
      }
      metrics.loadedModels.set(running);
    },
    detach() {
      scheduler.off('loaded', onLoaded);
      scheduler.off('unloaded', onUnloaded);
    },
  };
}
