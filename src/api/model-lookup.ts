import type { FastifyRequest } from 'fastify';
import type { CatalogModel } from '../catalog/catalog.js';
import { BadRequest, ModelNotFound } from '../errors.js';
import type { ApiDeps } from './deps.js';

/** Resolves a request's model name or throws the error Ollama clients expect (400 missing, 404 unknown). */
export function requireModel(deps: ApiDeps, name: unknown, request?: FastifyRequest): CatalogModel {
  if (typeof name !== 'string' || name.trim() === '') throw new BadRequest('missing required field "model"');
  const model = deps.catalog.resolve(name);
  if (!model) throw new ModelNotFound(name);
  // The auth layer (when installed) decorates the request with a model allow-list check.
  request?.assertModelAllowed?.(model.name);
  return model;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Installed by the auth plugin; throws Forbidden for a model outside the caller's allow-list. */
    assertModelAllowed?: (model: string) => void;
  }
}
