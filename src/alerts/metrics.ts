import { Gauge, type Registry } from 'prom-client';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { AlertEngine } from './engine.js';

/**
 * Alert state on /metrics: the alerts firing now, and the gauges deploy/prometheus/alerts.yaml needs
 * to express the same rules in PromQL. Each is filled at scrape time.
 */
export function registerAlertMetrics(registry: Registry, engine: AlertEngine, scheduler: Scheduler): void {
  const registers = [registry];
  new Gauge({
    name: 'corral_alerts_firing',
    help: "Alerts firing now (1 per alert), by rule, severity and subject (a model, token or directory; '' for Corral)",
    labelNames: ['rule', 'severity', 'subject'],
    registers,
    collect() {
      this.reset();
      for (const e of engine.firing()) this.set({ rule: e.rule, severity: e.severity, subject: e.subject }, 1);
    },
  });
  new Gauge({
    name: 'corral_model_crash_looping',
    help: 'Models that reached restart_backoff.max_restarts failures in a row and are not restarted (1 each)',
    labelNames: ['model'],
    registers,
    collect() {
      this.reset();
      for (const f of scheduler.status().failures) if (f.gaveUp) this.set({ model: f.name }, 1);
    },
  });
  new Gauge({
    name: 'corral_memory_budget_bytes',
    help: 'The memory budget of the loaded models (0 = unlimited)',
    registers,
    collect() {
      this.set(scheduler.status().memoryBudgetBytes);
    },
  });
  new Gauge({
    name: 'corral_memory_used_bytes',
    help: 'Estimated memory of the loaded models, counted against the budget',
    registers,
    collect() {
      this.set(scheduler.status().memoryUsedBytes);
    },
  });
  new Gauge({
    name: 'corral_disk_free_bytes',
    help: 'Free bytes on the disks of the data and model directories (as of the last alert evaluation)',
    labelNames: ['path'],
    registers,
    collect() {
      this.reset();
      for (const d of engine.observations()?.disks ?? []) this.set({ path: d.path }, d.freeBytes);
    },
  });
  new Gauge({
    name: 'corral_token_quota_used_ratio',
    help: "Share of an API token's daily token limit used today (tokens with a limit only)",
    labelNames: ['token'],
    registers,
    collect() {
      this.reset();
      for (const t of engine.observations()?.tokens ?? []) this.set({ token: t.name }, t.used / t.limit);
    },
  });
}
