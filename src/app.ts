import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { ApiDeps } from './api/deps.js';
import { authPlugin } from './auth/plugin.js';
import { createPasswords, type Passwords } from './auth/passwords.js';
import { registerAuthRoutes } from './auth/routes.js';
import type { Config } from './config/schema.js';
import type { Store } from './store/database.js';
import { installBodyParsers } from './api/body-parser.js';
import { installErrorHandler } from './api/error-handler.js';
import { registerChat } from './api/ollama/chat.js';
import { registerEmbed } from './api/ollama/embed.js';
import { registerGenerate } from './api/ollama/generate.js';
import { registerManageRoutes } from './api/ollama/manage.js';
import { registerModelRoutes } from './api/ollama/models.js';
import { registerRootRoutes } from './api/ollama/root.js';
import { registerOpenAi } from './api/openai/routes.js';
import type { AdminDeps } from './admin/deps.js';
import { registerAdmin } from './admin/plugin.js';

export interface AppOptions {
  api: ApiDeps;
  store: Store;
  auth: Config['auth'];
  /** bcrypt cost is injectable so tests need not pay cost 12 per login. */
  passwords?: Passwords;
  /** What the admin UI needs beyond the API deps; the logs directory defaults to the config's logs_dir. */
  admin?: Partial<Omit<AdminDeps, keyof ApiDeps>>;
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
  await app.register(authPlugin, { store: opts.store, config: opts.auth });
  await registerAuthRoutes(app, { store: opts.store, passwords: opts.passwords ?? createPasswords() });
  registerRootRoutes(app, opts.api);
  registerModelRoutes(app, opts.api);
  registerGenerate(app, opts.api);
  registerChat(app, opts.api);
  registerEmbed(app, opts.api);
  registerManageRoutes(app, opts.api);
  registerOpenAi(app, opts.api);
  await registerAdmin(app, { logsDir: () => opts.api.config().logs_dir, ...opts.admin, ...opts.api });
  return app;
}
