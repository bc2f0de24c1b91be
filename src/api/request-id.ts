import type { FastifyRequest } from 'fastify';

/** Headers that carry the request id to llama-server, so its log lines can be matched with ours. */
export function upstreamHeaders(request: FastifyRequest): Record<string, string> {
  return { 'x-request-id': request.id };
}
