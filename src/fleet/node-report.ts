import { isRunning, psEntry, tagsEntry } from '../api/ollama/models.js';
import type { Catalog, CatalogModel } from '../catalog/catalog.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { SchedulableModel } from '../scheduler/types.js';
import type { NodeReport } from './registry.js';

export interface ReportSources {
  id: string;
  url: string;
  version: string;
  catalog: Catalog;
  scheduler: Scheduler;
  schedulable(model: CatalogModel): SchedulableModel;
}

/** What a gateway node tells the fleet: its catalogue, what runs, its budget and its load. */
export function gatewayReport(s: ReportSources): NodeReport {
  const models = s.catalog.list().map((m) => ({
    name: m.name,
    aliases: m.aliases,
    digest: m.digest,
    size: m.size,
    needBytes: s.schedulable(m).memoryBytes,
    tags: tagsEntry(m),
  }));
  const running = s.scheduler.loaded().filter(isRunning);
  const loaded = running.map((l) => ({
    name: l.name,
    state: l.state,
    inFlight: l.inFlight,
    queued: l.queued + l.waitingForLoad,
    ps: psEntry(s, l),
  }));
  let slots = 0;
  let busy = 0;
  for (const l of running) {
    const m = s.catalog.resolve(l.name);
    if (!m || l.state !== 'ready') continue;
    slots += s.schedulable(m).parallel;
    busy += l.inFlight;
  }
  const status = s.scheduler.status();
  return {
    id: s.id,
    kind: 'gateway',
    url: s.url,
    version: s.version,
    models,
    loaded,
    budget: { totalBytes: status.memoryBudgetBytes, usedBytes: status.memoryUsedBytes },
    queueDepth: loaded.reduce((n, l) => n + l.queued, 0),
    inFlight: loaded.reduce((n, l) => n + l.inFlight, 0),
    kvCacheUsage: slots === 0 ? 0 : Math.min(1, busy / slots),
  };
}
