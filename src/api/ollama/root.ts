import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';

const PUBLIC = { auth: { public: true } };

export function registerRootRoutes(app: FastifyInstance, deps: ApiDeps): void {
  // GET also answers HEAD (Fastify's exposeHeadRoutes), which is what `ollama` clients probe.
  app.get('/', { config: PUBLIC }, async (_request, reply) =>
    reply.type('text/plain; charset=utf-8').send('Ollama is running'),
  );
  app.get('/api/version', { config: PUBLIC }, async () => ({ version: deps.config().server.ollama_version }));
}
