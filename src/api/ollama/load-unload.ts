import type { CatalogModel } from '../../catalog/catalog.js';
import type { ApiDeps } from '../deps.js';

/** An empty prompt (or empty messages) loads the model, or unloads it when keep_alive is 0 — Ollama's convention. */
export async function loadOrUnload(
  deps: ApiDeps,
  model: CatalogModel,
  keepAliveMs: number | undefined,
): Promise<'load' | 'unload'> {
  if (keepAliveMs === 0) {
    await deps.scheduler.unload(model.name, 'keep_alive 0');
    return 'unload';
  }
  await deps.scheduler.load(deps.schedulable(model), keepAliveMs);
  return 'load';
}
