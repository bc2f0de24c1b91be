import type { FastifyRequest } from 'fastify';
import type { CatalogModel } from '../catalog/catalog.js';
import { BadRequest, ModelNotFound } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { assertModelAllowed } from '../auth/principal.js';
import { servedModel } from '../scheduler/plans.js';

/** Resolves a request's model name or throws the error Ollama clients expect (400 missing, 404 unknown). */
export function requireModel(deps: ApiDeps, name: unknown, request?: FastifyRequest): CatalogModel {
  if (typeof name !== 'string' || name.trim() === '') throw new BadRequest('missing required field "model"');
  const model = deps.catalog.resolve(name);
  if (!model) throw new ModelNotFound(name, deps.catalog.unavailable(name));
  // An API token may be limited to some models: 403 for the others.
  if (request?.principal) assertModelAllowed(request.principal, model.name);
  return model;
}

/**
 * The model of a llama.cpp- or OpenAI-style request, where clients often send none (llama-server
 * serves one model): `model` if given, else the configured default_model, else the only model loaded.
 */
export function modelOrDefault(deps: ApiDeps, name: unknown, request: FastifyRequest): CatalogModel {
  if (name !== undefined && name !== null && name !== '') return requireModel(deps, name, request);
  const fallback = deps.config().default_model;
  if (fallback !== undefined) return requireModel(deps, fallback, request);
  const loaded = new Set(
    deps.scheduler
      .loaded()
      .filter((l) => l.state === 'ready' || l.state === 'starting')
      .map((l) => servedModel(l.name)),
  );
  if (loaded.size === 1) return requireModel(deps, [...loaded][0], request);
  throw new BadRequest(
    `missing required field "model": ${loaded.size} models are loaded and no default_model is configured`,
  );
}
