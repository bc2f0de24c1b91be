import type { FastifyRequest } from 'fastify';
import type { CatalogModel } from '../catalog/catalog.js';
import { BadRequest, ModelNotFound } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { assertModelAllowed } from '../auth/principal.js';

/** Resolves a request's model name or throws the error Ollama clients expect (400 missing, 404 unknown). */
export function requireModel(deps: ApiDeps, name: unknown, request?: FastifyRequest): CatalogModel {
  if (typeof name !== 'string' || name.trim() === '') throw new BadRequest('missing required field "model"');
  const model = deps.catalog.resolve(name);
  if (!model) throw new ModelNotFound(name, deps.catalog.unavailable(name));
  // An API token may be limited to some models: 403 for the others.
  if (request?.principal) assertModelAllowed(request.principal, model.name);
  return model;
}
