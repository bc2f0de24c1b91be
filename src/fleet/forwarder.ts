import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clientAbortSignal } from '../api/client-abort.js';
import type { ApiObserver } from '../api/deps.js';
import { isRunning } from '../api/ollama/models.js';
import { relay, streamErrorEvent } from '../api/openai/relay.js';
import { assertModelAllowed } from '../auth/principal.js';
import { ROUTE_RULES, ruleFor } from '../auth/roles.js';
import type { Catalog, CatalogModel } from '../catalog/catalog.js';
import { normalizeModelName } from '../catalog/names.js';
import { errorMessage, Unauthorized, UpstreamError } from '../errors.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { SchedulableModel } from '../scheduler/types.js';
import { FLEET_HEADER, type FleetCredentials, InvalidFleetCredential, NODE_HEADER } from './credentials.js';
import { answerHeaders, forwardedHeaders, NodeClient, NodeUnreachable } from './node-client.js';
import type { FleetMembership } from './membership.js';
import type { FleetNode } from './registry.js';
import { type LocalView, rankTargets } from './routing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The node that forwarded this request to this one (its credential verified); null for a client's own. */
    forwardedBy: string | null;
  }
}

export interface FleetPluginOptions {
  membership: FleetMembership;
  credentials: FleetCredentials;
  catalog: Catalog;
  scheduler: Scheduler;
  schedulable(model: CatalogModel): SchedulableModel;
  connectTimeoutMs: number;
  observe?: ApiObserver | undefined;
}

/** Routes that describe a model without loading it: forwarded only when this node does not have the model. */
const DESCRIBE = new Set(['POST /api/show']);

/** The model a request is for, when its route serves or describes one. */
function routedModel(request: FastifyRequest): { name: string; describe: boolean } | undefined {
  const key = `${request.method} ${request.routeOptions.url}`;
  const describe = DESCRIBE.has(key);
  if (!describe && !ruleFor(ROUTE_RULES, request.method, request.routeOptions.url)?.keepAlive) return undefined;
  const body = request.body as Record<string, unknown> | undefined;
  const name = body && typeof body === 'object' ? (body.model ?? (describe ? body.name : undefined)) : undefined;
  return typeof name === 'string' && name.trim() !== '' ? { name, describe } : undefined;
}

/**
 * The fleet at every route that serves a model, just before its lease: a request for a model this node
 * should not serve goes whole to the node that should, and its answer comes back byte for byte, so every
 * API (Ollama, OpenAI, Anthropic, the pass-through routes) is forwarded without code of its own. A
 * forwarded request carries a fleet credential; it is served where it lands (one hop at most), judged as
 * its original client was. A credential a client made up is refused.
 */
export class FleetForwarder {
  private readonly forwarded = new WeakSet<FastifyRequest>();
  private readonly nodes = new NodeClient();

  constructor(private readonly opts: FleetPluginOptions) {}

  private get selfId(): string {
    return this.opts.membership.selfId;
  }

  /** Checks fleet credentials; goes after the edge plugin (client address) and before auth (which it informs). */
  installCredentialCheck(app: FastifyInstance): void {
    app.decorateRequest('forwardedBy', null);
    app.addHook('onRequest', (request, reply) => this.checkCredential(request, reply));
  }

  /** Forwards; goes after auth, whose role, CSRF and limit checks apply at the entry node. */
  installForwarding(app: FastifyInstance): void {
    app.addHook('preHandler', (request, reply) => this.forward(request, reply));
    app.addHook('onClose', async () => this.nodes.close());
  }

  private async checkCredential(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header(NODE_HEADER, this.selfId);
    const token = request.headers[FLEET_HEADER];
    if (token === undefined) return;
    try {
      const claims = await this.opts.credentials.verify(String(token), request.method, request.url);
      request.clientLocal = claims.clientLocal;
      if (claims.clientIp) request.clientIp = claims.clientIp;
      request.forwardedBy = claims.from;
      request.log = request.log.child({ forwardedBy: claims.from });
      this.forwarded.add(request);
    } catch (err) {
      if (!(err instanceof InvalidFleetCredential)) throw err;
      request.log.warn({ reason: err.message }, 'refused a request with an invalid fleet credential');
      throw new Unauthorized(`invalid fleet credential (${err.message})`);
    }
  }

  private async forward(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (this.forwarded.has(request)) return;
    const wanted = routedModel(request);
    if (!wanted) return;
    const local = localView(this.opts, wanted.name);
    if (wanted.describe && local.known) return;
    const targets = rankTargets(local, this.opts.membership.peers());
    if (targets.length === 0 || targets[0]!.kind === 'local') return;
    assertModelAllowed(request.principal, local.name);
    const tried: string[] = [];
    const signal = clientAbortSignal(reply);
    for (const target of targets) {
      if (target.kind === 'local') return;
      tried.push(`node "${target.node.id}"`);
      const answer = await this.tryNode(request, target.node, signal);
      if (!answer) continue;
      this.opts.observe?.forwarded?.(request, local.name, target.node.id);
      return this.relayAnswer(request, reply, answer, target.node.id);
    }
    throw new UpstreamError(`model "${wanted.name}" is served by ${tried.join(', ')}: none can be reached`, 503);
  }

  /** The node's answer, or undefined when the request never reached it (then it may go elsewhere). */
  private async tryNode(request: FastifyRequest, node: FleetNode, signal: AbortSignal) {
    const headers = forwardedHeaders(request.headers, [FLEET_HEADER, 'x-request-id']);
    headers[FLEET_HEADER] = await this.opts.credentials.sign(node.id, request.method, request.url, {
      from: this.selfId,
      requestId: request.id,
      clientLocal: request.clientLocal,
      clientIp: request.clientIp,
    });
    headers['x-request-id'] = request.id;
    const { method, url, rawBody: body } = request;
    try {
      return await this.nodes.send(node.url, {
        method,
        url,
        headers,
        body,
        signal,
        connectTimeoutMs: this.opts.connectTimeoutMs,
      });
    } catch (err) {
      if (!(err instanceof NodeUnreachable)) throw err;
      this.opts.membership.suspect(node.id);
      if (err.delivered) {
        request.log.warn({ node: node.id, err: err.message }, 'forwarded request failed; not sent again');
        throw new UpstreamError(
          `node "${node.id}" ${err.message}; the request was not sent again, as it may have reached the model`,
          502,
        );
      }
      request.log.warn({ node: node.id, err: err.message }, 'node unreachable; trying the next');
      return undefined;
    }
  }

  /** The node's answer to the client as it came; a break mid-way ends it in its API's shape. */
  private relayAnswer(request: FastifyRequest, reply: FastifyReply, answer: IncomingMessage, node: string) {
    let lastByte: number | undefined;
    answer.on('data', (chunk: Buffer) => {
      if (lastByte === undefined && chunk.length > 0) this.opts.observe?.firstToken?.(request);
      lastByte = chunk[chunk.length - 1] ?? lastByte;
    });
    answer.once('error', (err) => request.log.warn({ node, err: errorMessage(err) }, 'node stopped mid-answer'));
    const line = errorLine(String(answer.headers['content-type'] ?? ''), request.routeOptions.url ?? '', node);
    // The error starts a line of its own, even when the node stopped in the middle of one.
    const { out } = relay(
      answer,
      line && ((message) => `${lastByte === 10 || lastByte === undefined ? '' : '\n'}${line(message)}`),
    );
    reply.code(answer.statusCode ?? 502).headers(answerHeaders(answer));
    return reply.send(out);
  }
}

/** How an interrupted answer ends in its API's shape; undefined: cut short (a partial JSON must not look whole). */
function errorLine(type: string, route: string, node: string): ((message: string) => string) | undefined {
  if (type.includes('text/event-stream')) return streamErrorEvent(route, `node "${node}"`);
  if (type.includes('application/x-ndjson'))
    return (m) => `${JSON.stringify({ error: `node "${node}" stopped mid-answer: ${m}` })}\n`;
  return undefined;
}

function localView(opts: FleetPluginOptions, requested: string): LocalView {
  const m = opts.catalog.resolve(requested);
  if (!m) return { known: false, name: normalizeModelName(requested), loaded: false, needBytes: 0, freeBytes: 0 };
  const status = opts.scheduler.status();
  const free =
    status.memoryBudgetBytes === 0
      ? Number.POSITIVE_INFINITY
      : Math.max(0, status.memoryBudgetBytes - status.memoryUsedBytes);
  return {
    known: true,
    name: m.name,
    loaded: opts.scheduler.loaded().some((l) => l.name === m.name && isRunning(l)),
    needBytes: opts.schedulable(m).memoryBytes,
    freeBytes: free,
  };
}
