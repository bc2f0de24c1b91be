import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { ApiDeps } from './api/deps.js';
import { installBodyParsers } from './api/body-parser.js';
import { installErrorHandler } from './api/error-handler.js';
import { registerChat } from './api/ollama/chat.js';
import { registerEmbed } from './api/ollama/embed.js';
import { registerGenerate } from './api/ollama/generate.js';
import { registerManageRoutes } from './api/ollama/manage.js';
import { registerModelRoutes } from './api/ollama/models.js';
import { registerRootRoutes } from './api/ollama/root.js';
import { registerOpenAi } from './api/openai/routes.js';

export interface AppOptions {
  api: ApiDeps;
  logger?: FastifyServerOptions['logger'];
  bodyLimit?: number;
}

/** Builds the Fastify app with every route; does not listen (tests use inject or an ephemeral port). */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 64 * 1024 * 1024,
    // Ollama rejects wrong types rather than coercing them; unknown fields are kept and ignored.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: true,
  });
  installBodyParsers(app);
  installErrorHandler(app);
  registerRootRoutes(app, opts.api);
  registerModelRoutes(app, opts.api);
  registerGenerate(app, opts.api);
  registerChat(app, opts.api);
  registerEmbed(app, opts.api);
  registerManageRoutes(app, opts.api);
  registerOpenAi(app, opts.api);
  return app;
}
