import { Agent, type IncomingMessage, request as httpRequest, type RequestOptions } from 'node:http';
import type { Readable } from 'node:stream';
import { UpstreamError, UpstreamUnreachable } from '../errors.js';
import type { LlamaEndpoint, RawAnswer } from './client.js';

export interface SendOptions {
  signal?: AbortSignal | undefined;
  headers?: Record<string, string> | undefined;
  /**
   * A streamed answer: llama-server closes the connection after it (while announcing keep-alive), so the
   * request says `Connection: close` and its socket never returns to the pool for a reuse that would fail.
   */
  stream?: boolean | undefined;
}

/** Why a request got no answer, and whether (and when) it had been written to a connected socket. */
interface Attempt {
  delivered: boolean;
  reused: boolean;
  /** Written to a child whose other connection had just broken (see dyingWhenWritten). */
  toDying?: boolean;
}

/** How long after a connection broke mid-answer a child counts as dying (a SIGKILL takes milliseconds). */
const DYING_MS = 5_000;

/**
 * HTTP/1.1 to one llama-server over node:http. One keep-alive Agent per child: non-streamed requests
 * reuse connections; streamed ones take a connection of their own. node:http rather than undici: it
 * is already loaded for Fastify (no extra resident modules), its parser is native, and side by side on
 * one llama-server it cost less gateway CPU per streamed request than undici's Pool (214 against 287 µs
 * for 4-token streams, 8 concurrent) — within 40 µs of a hand-written client (see docs/architecture.md).
 */
export class Transport {
  private readonly agent = new Agent({
    keepAlive: true,
    maxSockets: 256,
    // Idle sockets are dropped before llama-server's own 5 s keep-alive timeout closes them under us.
    timeout: 4_000,
  });
  private readonly target: RequestOptions;
  private readonly auth: Record<string, string>;
  private closed = false;
  /** When a connection to this child last broke mid-answer (performance.now()). */
  private brokeAt: number | undefined;

  constructor(endpoint: LlamaEndpoint) {
    if ('socketPath' in endpoint) {
      this.target = { socketPath: endpoint.socketPath };
      this.auth = {};
    } else {
      this.target = { host: endpoint.host, port: endpoint.port };
      this.auth = { authorization: `Bearer ${endpoint.apiKey}` };
    }
  }

  /**
   * One request and its answer's head. An answer ≥ 400 rejects with UpstreamError carrying llama-server's
   * message (its 5xx become 500). No answer rejects with UpstreamUnreachable; a connection kept alive
   * that llama-server had closed just as it was reused is tried once more on a fresh one (the pool's
   * other idle connections dropped first), since the request cannot have reached a slot.
   */
  async send(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    opts: SendOptions = {},
  ): Promise<RawAnswer> {
    let res: IncomingMessage;
    try {
      res = await this.attempt(method, path, body, opts).catch((err: Attempt & Error) => {
        if (!err.reused || opts.signal?.aborted || !isStale(err)) throw err;
        // The other idle connections are most likely closed too (llama-server restarted, died or timed
        // them out together): the retry must not land on one of them, or it fails the same way.
        this.dropIdle();
        return this.attempt(method, path, body, opts);
      });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const e = err as Attempt & Error;
      const delivered = e.delivered === true && e.toDying !== true;
      throw new UpstreamUnreachable(`llama-server is unreachable: ${e.message}`, delivered, { cause: err });
    }
    if (res.statusCode! >= 400) throw await answeredError(res, res.statusCode!);
    return { status: res.statusCode!, headers: res.headers, body: res };
  }

  /** The answer's body as text, for small answers. */
  async text(method: 'GET' | 'POST', path: string, body?: string, opts?: SendOptions): Promise<string> {
    return readText((await this.send(method, path, body, opts)).body);
  }

  /**
   * Whether another connection of this child had broken mid-answer shortly before a request was written.
   * A killed llama-server drops its connections before its listening socket: a connection made in
   * between is accepted and then reset (17 of 30 SIGKILLs here, connecting right after a stream broke).
   * Such a request reached a dying process, not a slot, so it counts as never delivered and may be
   * sent once to the fresh child (scheduler.withLease does so only once this one's exit is handled).
   */
  private dyingWhenWritten(writtenAt: number): boolean {
    const broke = this.brokeAt;
    return broke !== undefined && broke <= writtenAt && writtenAt - broke < DYING_MS;
  }

  private dropIdle(): void {
    for (const list of Object.values(this.agent.freeSockets)) for (const socket of list ?? []) socket.destroy();
  }

  /** Connections kept alive for reuse (for diagnostics and tests). */
  get idle(): number {
    return Object.values(this.agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private attempt(method: string, path: string, body: string | undefined, opts: SendOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const state: Attempt = { delivered: false, reused: false };
      if (this.closed) return reject(Object.assign(new Error('its llama-server has exited'), state));
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const headers: Record<string, string | number> = { ...this.auth, ...opts.headers };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      if (opts.stream) headers.connection = 'close';
      const req = httpRequest({ ...this.target, agent: this.agent, method, path, headers });
      let answer: IncomingMessage | undefined;
      // The signal's own reason ends the request or its body, so readers see why (not a generic abort).
      const signal = opts.signal;
      const onAbort = (): void => void (answer ?? req).destroy(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      let writtenAt = 0;
      const written = (): void => {
        state.delivered = true;
        writtenAt = performance.now();
      };
      req.once('socket', (socket) => {
        state.reused = req.reusedSocket;
        // Written once connected: from then on the child may have read it.
        if (!socket.connecting) written();
        else socket.once('connect', written);
      });
      req.once('response', (res) => {
        answer = res;
        res.once('close', done);
        // The connection closed under an answer (Node's 'aborted' reset; a destroy of ours has another error).
        res.once('error', (err) => {
          if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') this.brokeAt = performance.now();
        });
        // A generation may take long; the agent's idle timeout is for pooled sockets only.
        req.setTimeout(0);
        resolve(res);
      });
      req.on('error', (err) => {
        done();
        if (state.delivered) state.toDying = this.dyingWhenWritten(writtenAt);
        // A fresh connection reset after the request was written: the child may be going down.
        if (state.delivered && !state.reused && isStale(err)) this.brokeAt = performance.now();
        reject(Object.assign(err, state));
      });
      req.end(body);
    });
  }
}

/** The failures of a pooled connection that the server had already closed. */
function isStale(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * What llama-server (v0.5.0) says when it throws while reading a request: a field of the wrong type
 * or missing (nlohmann's json exceptions, its own parse checks), a token id past its vocabulary, an
 * input to embed or rerank longer than its batch (one slot's context, see runner/args.ts). It
 * answers those with 500; they are the request's fault, so the client gets 400.
 */
const REQUEST_FAULT =
  /^(\[json\.exception\.|Failed to parse |'[^']*' is required|Missing |Unsupported |Expected |vector::_M_range_check|input \(\d+ tokens\) is too large)/;

async function answeredError(body: Readable, status: number): Promise<UpstreamError> {
  // The message is a courtesy; the status says enough if the body cannot be read.
  const text = await readText(body).catch(() => '');
  const message = upstreamMessage(text, status);
  return new UpstreamError(message, status === 500 && REQUEST_FAULT.test(message) ? 400 : Math.min(status, 500));
}

/** A whole (small) answer body as text. */
export async function readText(body: Readable): Promise<string> {
  let text = '';
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) text += chunk;
  return text;
}

/** llama-server errors look like {"error":{"code":400,"message":"...","type":"..."}}. */
export function upstreamMessage(text: string, status: number): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error?.message) return parsed.error.message;
    if (parsed.message) return parsed.message;
  } catch {
    // not JSON
  }
  return text.trim() || `llama-server answered ${status}`;
}
