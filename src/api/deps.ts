import type { Catalog, CatalogModel } from '../catalog/catalog.js';
import type { Config } from '../config/schema.js';
import type { Scheduler, SchedulableModel } from '../scheduler/scheduler.js';

/** What the API routes need from the rest of Corral; handed in by app.ts. */
export interface ApiDeps {
  catalog: Catalog;
  scheduler: Scheduler;
  /** The current config (hot reload replaces it, so read it per request). */
  config(): Config;
  /** How a catalogue entry becomes something the scheduler can run under the current config. */
  schedulable(model: CatalogModel): SchedulableModel;
}
