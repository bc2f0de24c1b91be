import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** A forwarded request that got no answer; `delivered` says whether it may have reached the node. */
export class NodeUnreachable extends Error {
  constructor(
    message: string,
    readonly delivered: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'NodeUnreachable';
  }
}

export interface OutgoingForward {
  method: string;
  /** Path and query, as the client sent them. */
  url: string;
  headers: Record<string, string | string[]>;
  body: string | undefined;
  signal: AbortSignal;
  connectTimeoutMs: number;
}

/**
 * Headers that describe one connection, or that this hop answers for itself: never passed on. Origin
 * and Fetch Metadata were judged by the entry node's edge; the receiving node sees a server, not a page.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'origin',
  'referer',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

/** The client's headers as a forwarded request carries them (credentials included: every node checks them). */
export function forwardedHeaders(
  incoming: IncomingHttpHeaders,
  drop: readonly string[],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.includes(name) || name.startsWith('sec-fetch-')) continue;
    out[name] = value;
  }
  return out;
}

/** An answer's headers as the client gets them back (the body passes unchanged, so its length holds). */
export function answerHeaders(answer: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined || (HOP_BY_HOP.has(name) && name !== 'content-length')) continue;
    if (name.startsWith('access-control-')) continue;
    out[name] = value;
  }
  return out;
}

/**
 * HTTP to the other nodes of the fleet: one keep-alive agent per node, a bounded connect, and for each
 * failure whether the request may have been read. It counts as written once the connection is up; only a
 * request that never got that far may be sent to another node.
 */
export class NodeClient {
  private readonly agents = new Map<string, HttpAgent>();

  async send(base: string, req: OutgoingForward): Promise<IncomingMessage> {
    const target = new URL(req.url, base);
    try {
      return await this.attempt(target, req, false);
    } catch (err) {
      // A kept-alive connection the node had just closed: the request cannot have reached it.
      const e = err as NodeUnreachable & { reused?: boolean };
      if (e.reused && !req.signal.aborted) return this.attempt(target, req, true);
      throw err;
    }
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  private agent(target: URL): HttpAgent {
    let agent = this.agents.get(target.origin);
    if (!agent) {
      const options = { keepAlive: true, maxSockets: 256, timeout: 30_000 };
      agent = target.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
      this.agents.set(target.origin, agent);
    }
    return agent;
  }

  private attempt(target: URL, req: OutgoingForward, fresh: boolean): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | string[] | number> = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const out = send(target, { method: req.method, headers, agent: fresh ? false : this.agent(target) });
      let delivered = false;
      let reused = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (err: Error): void => {
        clearTimeout(connectTimer);
        if (req.signal.aborted) return reject(req.signal.reason);
        const stale = reused && !fresh && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
        const what = delivered ? 'failed before answering' : 'could not be reached';
        reject(Object.assign(new NodeUnreachable(`${what}: ${err.message}`, delivered && !stale), { reused: stale }));
      };
      const onAbort = (): void => void out.destroy(req.signal.reason as Error);
      req.signal.addEventListener('abort', onAbort, { once: true });
      out.once('socket', (socket) => {
        reused = out.reusedSocket;
        if (!socket.connecting) delivered = true;
        else {
          connectTimer = setTimeout(() => out.destroy(new Error('connect timed out')), req.connectTimeoutMs);
          socket.once('connect', () => {
            clearTimeout(connectTimer);
            delivered = true;
          });
        }
      });
      out.once('response', (answer) => {
        answer.once('close', () => req.signal.removeEventListener('abort', onAbort));
        resolve(answer);
      });
      out.on('error', fail);
      out.end(req.body);
    });
  }
}
