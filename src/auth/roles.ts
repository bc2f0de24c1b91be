import type { Role } from './principal.js';

/** Who may call a route: a least role, or `public` for no credential at all. */
export type Access = Role | 'public';

export interface RouteRule {
  access: Access;
  /** One line for the generated role table in docs/roles.md. */
  what: string;
  /** Audit action name of an operator/admin action; default "METHOD /route". */
  audit?: string;
  /** Only the login and first-admin forms: they create the session a CSRF token belongs to. */
  csrf?: false;
  /** A `keep_alive` in the body can unload (0) or pin (negative) a model, which needs the operator role. */
  keepAlive?: true;
  /** A config switch that makes the route public; see the auth plugin's `open` option. */
  publicIf?: 'metrics.public';
  /** Counted against `operation_limits` for non-admins. */
  operation?: 'pull' | 'create' | 'model';
}

const viewer = (what: string, extra: Partial<RouteRule> = {}): RouteRule => ({ access: 'viewer', what, ...extra });
const operator = (what: string, extra: Partial<RouteRule> = {}): RouteRule => ({ access: 'operator', what, ...extra });
const admin = (what: string, extra: Partial<RouteRule> = {}): RouteRule => ({ access: 'admin', what, ...extra });
const open = (what: string, extra: Partial<RouteRule> = {}): RouteRule => ({ access: 'public', what, ...extra });
const inference = (what: string) => viewer(what, { keepAlive: true });

/**
 * Every route of Corral and who may call it: the one place roles are decided (the auth plugin reads
 * it, docs/roles.md is generated from it, and the app refuses to start with a route missing here).
 * Keys are "METHOD url" exactly as registered with Fastify; HEAD follows GET.
 */
export const ROUTE_RULES: Readonly<Record<string, RouteRule>> = {
  'GET /': open('"Ollama is running" (what clients probe)'),
  'GET /api/version': open('the Ollama version Corral reports'),
  'GET /health': open('liveness'),
  'GET /ready': open('readiness (config, store, llama-server binary)'),
  'GET /metrics': viewer('Prometheus metrics', { publicIf: 'metrics.public' }),

  'GET /api/tags': viewer('list models (only those the caller may use)'),
  'GET /api/ps': viewer('list loaded models (only those the caller may use)'),
  'POST /api/show': viewer('model details'),
  'POST /api/generate': inference('generate; an empty prompt loads the model'),
  'POST /api/chat': inference('chat; empty messages load the model'),
  'POST /api/embed': inference('embeddings'),
  'POST /api/embeddings': inference('embeddings (legacy shape)'),
  'POST /v1/chat/completions': inference('OpenAI chat completions'),
  'POST /v1/completions': inference('OpenAI completions'),
  'POST /v1/embeddings': inference('OpenAI embeddings'),
  'POST /v1/responses': inference('OpenAI responses'),
  'POST /v1/messages': inference('Anthropic messages'),
  'POST /v1/messages/count_tokens': inference("Anthropic token count of a request, by the model's template"),
  'POST /infill': inference('llama.cpp fill-in-the-middle (llama.vscode, llama.vim)'),
  'POST /v1/rerank': inference('rerank documents against a query (a reranker model)'),
  'POST /rerank': inference('rerank (llama.cpp alias of /v1/rerank)'),
  'POST /v1/reranking': inference('rerank (llama.cpp alias of /v1/rerank)'),
  'POST /reranking': inference('rerank (llama.cpp alias of /v1/rerank)'),
  'POST /tokenize': inference("text to the model's token ids"),
  'POST /detokenize': inference("the model's token ids to text"),
  'POST /apply-template': inference("messages rendered by the model's chat template"),
  'GET /v1/models': viewer('OpenAI model list (only those the caller may use)'),
  'GET /v1/models/:id': viewer('one model'),

  'POST /api/pull': operator('download a model', { audit: 'model.pull', operation: 'pull' }),
  'POST /api/copy': operator('copy a model under a new name', { audit: 'model.copy', operation: 'create' }),
  'POST /api/create': operator('create a model from files, a Modelfile or another model', {
    audit: 'model.create',
    operation: 'create',
  }),
  'HEAD /api/blobs/:digest': operator('whether a blob is already uploaded'),
  'POST /api/blobs/:digest': operator('upload a blob (a GGUF or adapter for /api/create)', { audit: 'blob.upload' }),
  'POST /api/push': operator('push a model (not supported: 501)', { audit: 'model.push' }),
  'DELETE /api/delete': admin('delete a model and its files', { audit: 'model.delete' }),

  'GET /admin/login': open('login page'),
  'POST /admin/login': open('log in (throttled per user and address)', { csrf: false }),
  'GET /admin/setup': open('first-admin setup page (needs the one-time URL)'),
  'POST /admin/setup': open('create the first admin with the one-time token', { csrf: false }),
  'GET /admin/assets/:name': open("the admin UI's script, styles and icon"),
  'POST /admin/logout': viewer('log out'),
  'GET /admin/session': viewer('who is logged in, and the CSRF token'),
  'GET /admin': viewer('dashboard'),
  'GET /admin/fragments/models': viewer('dashboard models table'),
  'GET /admin/events': viewer('dashboard live feed (SSE)'),
  'GET /admin/model': viewer('model page'),
  'GET /admin/model/logs': viewer("a model's live log (SSE)"),
  'POST /admin/model/settings': operator("save a model's settings into the config file (args: admins only)", {
    audit: 'model.settings',
  }),
  'GET /admin/activity': viewer('recent requests and charts'),
  'GET /admin/activity/events': viewer('activity live feed (SSE)'),
  'GET /admin/usage': viewer('usage and latency per model or token over a range'),
  'GET /admin/usage.csv': viewer('the usage table as CSV'),
  'GET /admin/alerts': viewer('firing alerts, their history, the rules and webhooks'),
  'POST /admin/alerts/test': admin('send a test notification to every webhook', { audit: 'alerts.test' }),
  'GET /admin/fragments/alert-banner': viewer('the banner of firing alerts (polled by every page)'),
  'GET /admin/playground': viewer('chat playground'),
  'GET /admin/conversations': viewer("the caller's playground conversations"),
  'POST /admin/conversations': viewer('start a playground conversation'),
  'GET /admin/conversations/:id': viewer("one of the caller's conversations, with its messages"),
  'PATCH /admin/conversations/:id': viewer("rename or save one of the caller's conversations"),
  'DELETE /admin/conversations/:id': viewer("delete one of the caller's conversations"),
  'GET /admin/conversations/:id/export': viewer('download a conversation as JSON or Markdown'),
  'GET /admin/config': viewer('the config file'),
  'GET /admin/system': viewer('host, disks and llama-server binary'),
  'GET /admin/nodes': viewer("the fleet's nodes: state, models, load, last heartbeat"),
  'GET /admin/pull': operator('pull page'),
  'POST /admin/actions/load': operator('load a model', { audit: 'model.load', operation: 'model' }),
  'POST /admin/actions/unload': operator('unload a model', { audit: 'model.unload', operation: 'model' }),
  'POST /admin/actions/restart': operator('restart a model', { audit: 'model.restart', operation: 'model' }),
  'GET /admin/tokens': admin('API tokens'),
  'POST /admin/tokens': admin("create an API token (at most the creator's role)", { audit: 'token.create' }),
  'POST /admin/tokens/revoke': admin('revoke an API token', { audit: 'token.revoke' }),
  'GET /admin/users': admin('users'),
  'POST /admin/users/:op': admin('add, change role, reset password, disable, enable or delete a user'),
  'POST /admin/config/reload': admin('reload the config file', { audit: 'config.reload' }),
  'GET /admin/*': viewer('any other admin address: a "not found" page'),
};

/** The rule of a registered route; HEAD routes are the GET routes Fastify adds. */
export function ruleFor(
  rules: Readonly<Record<string, RouteRule>>,
  method: string,
  url: string | undefined,
): RouteRule | undefined {
  if (url === undefined) return undefined;
  return rules[`${method} ${url}`] ?? (method === 'HEAD' ? rules[`GET ${url}`] : undefined);
}
