import type { Scheduler } from '../scheduler/scheduler.js';
import { relabelInto, renderFamilies, type Family } from './relabel.js';

/**
 * Fetches every ready llama-server's own /metrics in parallel and re-exports them with a `model`
 * label. A slow or dead child is skipped after `timeoutMs` so one bad runner never stalls a scrape.
 */
export async function scrapeRunners(scheduler: Scheduler, timeoutMs = 500, node?: string): Promise<string> {
  const ready = scheduler.loaded().filter((l) => l.runner.state === 'ready' && l.runner.client);
  const texts = await Promise.all(
    ready.map(async (l) => {
      try {
        const text = await l.runner.client!.metrics({ signal: AbortSignal.timeout(timeoutMs) });
        return { model: l.name, text };
      } catch {
        return undefined;
      }
    }),
  );
  const families = new Map<string, Family>();
  for (const t of texts) if (t) relabelInto(families, t.text, t.model, node);
  return renderFamilies(families);
}
