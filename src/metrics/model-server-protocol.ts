import { Gauge, type Registry } from 'prom-client';
import type { Scheduler } from '../scheduler/scheduler.js';

export interface ProtocolSources {
  scheduler: Scheduler;
  /** Slots (llama-server `--parallel`) of a loaded model. */
  slotsOf(model: string): number | undefined;
  maxLoadedModels(): number;
}

/**
 * The figures the Gateway API Inference Extension's endpoint picker reads from each model server
 * (its "model server protocol"), one series per Corral node without a model label: requests queued,
 * requests running, KV-cache use, and which models are loaded in its LoRA-info shape, so an
 * InferencePool can route across Corral pods (docs/fleet.md names the picker's settings).
 */
export function registerModelServerProtocol(registry: Registry, s: ProtocolSources): void {
  const registers = [registry];
  const running = () => s.scheduler.loaded().filter((l) => l.runner.state === 'ready' || l.runner.state === 'starting');
  new Gauge({
    name: 'corral_requests_waiting',
    help: 'Requests waiting for a slot or for their model to load, over all models (TotalQueuedRequests)',
    registers,
    collect() {
      this.set(running().reduce((n, l) => n + l.queued + l.waitingForLoad, 0));
    },
  });
  new Gauge({
    name: 'corral_requests_running',
    help: 'Requests holding a slot, over all models (TotalRunningRequests)',
    registers,
    collect() {
      this.set(running().reduce((n, l) => n + l.inFlight, 0));
    },
  });
  new Gauge({
    name: 'corral_kv_cache_usage_perc',
    help:
      'Busy slots over all slots of the loaded models, 0 to 1: each slot owns its share of the KV cache ' +
      '(KVCacheUtilization)',
    registers,
    collect() {
      let slots = 0;
      let busy = 0;
      for (const l of running()) {
        if (l.runner.state !== 'ready') continue;
        slots += s.slotsOf(l.name) ?? 1;
        busy += l.inFlight;
      }
      this.set(slots === 0 ? 0 : Math.min(1, busy / slots));
    },
  });
  new Gauge({
    name: 'corral_lora_requests_info',
    help: 'Loaded models as adapters, in the shape of vLLM lora_requests_info; the value is when it was read',
    labelNames: ['max_lora', 'running_lora_adapters', 'waiting_lora_adapters'],
    registers,
    collect() {
      this.reset();
      const all = running();
      const ready = all.filter((l) => l.runner.state === 'ready').map((l) => l.name);
      const waiting = all.filter((l) => l.runner.state !== 'ready' || l.waitingForLoad > 0).map((l) => l.name);
      this.set(
        {
          max_lora: String(s.maxLoadedModels()),
          running_lora_adapters: ready.join(','),
          waiting_lora_adapters: waiting.join(','),
        },
        Date.now() / 1000,
      );
    },
  });
}
