import type { FastifyRequest } from 'fastify';
import { ROUTE_RULES, ruleFor } from '../auth/roles.js';
import type { Catalog } from '../catalog/catalog.js';

/**
 * The catalogue name of the model an inference request named, for requests refused before a slot
 * was leased (a full queue, a failed load): metrics and the request log count them per model too.
 */
export function requestedModel(catalog: Catalog): (request: FastifyRequest) => string | undefined {
  return (request) => {
    if (!ruleFor(ROUTE_RULES, request.method, request.routeOptions.url)?.keepAlive) return undefined;
    const body = request.body as Record<string, unknown> | undefined;
    const name = body && typeof body === 'object' ? body.model : undefined;
    return typeof name === 'string' ? catalog.resolve(name)?.name : undefined;
  };
}
