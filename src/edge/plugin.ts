import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clientAddress, createAddressMatcher, isLoopback } from '../auth/client-ip.js';
import { Forbidden, UnsupportedMediaType } from '../errors.js';
import { createHostMatcher } from './hosts.js';
import { createOriginMatcher, isSameOrigin } from './origins.js';

export interface EdgeOptions {
  trustedProxies: readonly string[];
  allowedOrigins: readonly string[];
  allowedHosts: readonly string[];
  /** server.host: a name to bind to is one of ours. */
  bindHost: string;
  /** The Host check guards the modes in which a local caller needs no credential. */
  authMode: 'loopback-open' | 'required' | 'off';
  /** Body limit of the login and admin forms (bytes). */
  formBodyLimit?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Client address after applying trusted_proxies. */
    clientIp: string;
    /** The connection came from a trusted proxy (X-Forwarded-* headers are its word). */
    clientProxied: boolean;
    /** On this host: a loopback peer that is not a trusted proxy. Such a caller is "loopback" to auth. */
    clientLocal: boolean;
  }
}

export const FORM_BODY_LIMIT = 16 * 1024;
/** Content types a page may send cross-origin without a CORS preflight (the Fetch standard's list). */
const SIMPLE_TYPES = /^\s*(text\/plain|application\/x-www-form-urlencoded|multipart\/form-data)\b/i;
const PREFLIGHT_MAX_AGE = '7200';

const hasBody = (request: FastifyRequest) =>
  request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;

const isAdminUrl = (url: string) => url === '/admin' || url.startsWith('/admin/') || url.startsWith('/admin?');

/**
 * Runs before anything else on every request: who the client is (trusted proxies), and whether a
 * browser may be the one asking. A page on a foreign origin, or a DNS-rebound name for 127.0.0.1,
 * is refused before routing, as Ollama refuses them (OLLAMA_ORIGINS and its host check).
 */
async function edgePluginImpl(app: FastifyInstance, options: EdgeOptions) {
  const trusted = createAddressMatcher(options.trustedProxies);
  const originAllowed = createOriginMatcher(options.allowedOrigins);
  const hostAllowed = createHostMatcher({ bindHost: options.bindHost, allowed: options.allowedHosts });
  const formLimit = options.formBodyLimit ?? FORM_BODY_LIMIT;

  app.decorateRequest('clientIp', '');
  app.decorateRequest('clientProxied', false);
  app.decorateRequest('clientLocal', false);

  // Forms are small; only the API takes images (server.body_limit).
  app.addHook('onRoute', (route) => {
    if (route.bodyLimit === undefined && isAdminUrl(route.url ?? route.path ?? '')) route.bodyLimit = formLimit;
  });

  app.addHook('onRequest', async (request, reply) => {
    const client = clientAddress(
      request.socket.remoteAddress ?? request.ip,
      request.headers['x-forwarded-for'],
      trusted,
    );
    request.clientIp = client.ip;
    request.clientProxied = client.proxied;
    request.clientLocal = !client.proxied && isLoopback(client.ip);
    if (options.authMode !== 'required' && !client.proxied && isLoopback(request.socket.localAddress)) {
      if (!hostAllowed(request.headers.host)) {
        throw new Forbidden(`host "${request.headers.host}" is not allowed; add it to server.allowed_hosts`);
      }
    }
    const origin = request.headers.origin;
    if (origin === undefined) {
      // A browser leaves Origin out of a GET it sends for <img>, <script> or a no-cors fetch; its
      // Fetch Metadata still says where the request came from.
      const site = request.headers['sec-fetch-site'];
      if ((site === 'cross-site' || site === 'same-site') && request.headers['sec-fetch-mode'] !== 'navigate') {
        throw new Forbidden('a request from another site without an Origin is not allowed');
      }
      return;
    }
    if (isSameOrigin(origin, request.headers.host)) return;
    if (!originAllowed(origin)) {
      throw new Forbidden(`origin "${origin}" is not allowed; add it to server.allowed_origins`);
    }
    corsHeaders(request, reply, origin);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
      return reply.code(204).send();
    }
    // A body a page may send without a preflight is never taken as JSON from another origin.
    if (hasBody(request) && SIMPLE_TYPES.test(request.headers['content-type'] ?? 'text/plain')) {
      throw new UnsupportedMediaType('a cross-origin request must send its body as Content-Type: application/json');
    }
  });
}

function corsHeaders(request: FastifyRequest, reply: FastifyReply, origin: string): void {
  reply.header('access-control-allow-origin', origin);
  reply.header('vary', 'Origin');
  if (request.method !== 'OPTIONS') return;
  reply.header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS');
  const wanted = request.headers['access-control-request-headers'];
  if (typeof wanted === 'string') reply.header('access-control-allow-headers', wanted);
  reply.header('access-control-max-age', PREFLIGHT_MAX_AGE);
}

// Equivalent of fastify-plugin: the hooks and decorators apply to the whole app.
(edgePluginImpl as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(edgePluginImpl as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'corral-edge';

export const edgePlugin = edgePluginImpl;
