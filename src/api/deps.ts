import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal.js';
import type { Catalog, CatalogModel } from '../catalog/catalog.js';
import type { Config } from '../config/schema.js';
import type { Quantizer } from '../quantize/quantizer.js';
import type { Purpose } from '../scheduler/plans.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { SchedulableModel } from '../scheduler/types.js';

/** What the API routes need from the rest of Corral; handed in by app.ts. */
export interface ApiDeps {
  catalog: Catalog;
  scheduler: Scheduler;
  /** The current config (hot reload replaces it, so read it per request). */
  config(): Config;
  /**
   * How a catalogue entry becomes something the scheduler can run under the current config; for
   * 'embeddings', the child that embeds for it (its own, or an embedding child of a generative model).
   */
  schedulable(model: CatalogModel, purpose?: Purpose): SchedulableModel;
  /** Runs llama-quantize for /api/create's `quantize` (without one, quantizing answers 501). */
  quantizer?: Quantizer | undefined;
  observe?: ApiObserver;
  /** With a fleet: the model listings of every node (JSON text in each API's shape). */
  fleet?: FleetListings | undefined;
}

/** The fleet-wide answers of the listing routes, filtered to what the caller may use. */
export interface FleetListings {
  tags(principal: Principal | null): string;
  ps(principal: Principal | null): string;
  openAiModels(principal: Principal | null): string;
  /** One model of another node in `/v1/models/:id`'s shape, if some node has it. */
  openAiModel(principal: Principal | null, name: string): Record<string, unknown> | undefined;
}

/**
 * Measurement hooks the routes call at the moments only they can see (metrics and the request log
 * implement it; every method is optional so routes work without it).
 */
export interface ApiObserver {
  /** A slot was granted for `model` (canonical name). */
  leased?(request: FastifyRequest, model: string, lease: { queueWaitMs: number; loadDurationMs: number }): void;
  /** The first generated token (or, for byte-piped /v1 answers, the first upstream byte) is on its way. */
  firstToken?(request: FastifyRequest): void;
  usage?(request: FastifyRequest, promptTokens: number, generatedTokens: number): void;
  /** The request was forwarded to node `node` of the fleet for `model`. */
  forwarded?(request: FastifyRequest, model: string, node: string): void;
}
