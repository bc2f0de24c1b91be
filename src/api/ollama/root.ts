import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';

export function registerRootRoutes(app: FastifyInstance, deps: ApiDeps): void {
  // GET also answers HEAD (Fastify's exposeHeadRoutes), which is what `ollama` clients probe.
  app.get('/', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Ollama is running'));
  app.get('/api/version', async () => ({ version: deps.config().server.ollama_version }));
}
