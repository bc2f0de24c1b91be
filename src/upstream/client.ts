import type { Readable } from 'node:stream';
import { UpstreamError, UpstreamUnreachable } from '../errors.js';
import { tracked, type Delivery, type UpstreamPool } from './pool.js';
import { streamPost } from './stream-post.js';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/**
 * POSTs JSON to a runner. Non-2xx answers are turned into UpstreamError carrying llama-server's own
 * message, so clients see why (e.g. "the request exceeds the available context size"). A streamed
 * request (`stream: true`) goes on a connection of its own (stream-post.ts); everything else through
 * the pool, whose connections llama-server keeps alive.
 */
export async function postJson(
  pool: UpstreamPool,
  path: string,
  payload: unknown,
  signal?: AbortSignal,
  headers: Record<string, string> = {},
): Promise<UpstreamResponse> {
  const body = JSON.stringify(payload);
  if ((payload as { stream?: unknown } | null)?.stream === true) return postStream(pool, path, body, signal, headers);
  const delivery: Delivery = { written: false };
  const send = () =>
    pool.request(
      tracked(
        {
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body,
          signal,
          // Generation can take long before the first byte (prompt processing of a long context).
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        delivery,
      ),
    );
  let res;
  try {
    try {
      res = await send();
    } catch (err) {
      // A pooled keep-alive connection that llama-server closed just as we reused it fails before
      // any answer: the request never reached a slot, so sending it once more is safe.
      if (signal?.aborted || !isStaleConnection(err)) throw err;
      res = await send();
    }
  } catch (err) {
    throw unreachable(err, signal, delivery);
  }
  if (res.statusCode >= 400) throw await answeredError(res.body as unknown as Readable, res.statusCode);
  return { status: res.statusCode, headers: res.headers, body: res.body as unknown as Readable };
}

async function postStream(
  pool: UpstreamPool,
  path: string,
  body: string,
  signal: AbortSignal | undefined,
  headers: Record<string, string>,
): Promise<UpstreamResponse> {
  const res = await streamPost(pool.host, pool.port, path, body, headers, signal);
  if (res.status >= 400) throw await answeredError(res.body, res.status);
  return res;
}

/** llama-server's own message for an error answer; its 5xx become our 500. */
async function answeredError(body: Readable, status: number): Promise<UpstreamError> {
  // The message is a courtesy; the status says enough if the body cannot be read.
  const text = await readText(body).catch(() => '');
  return new UpstreamError(upstreamMessage(text, status), Math.min(status, 500));
}

/** A whole (small) answer body as text. */
export async function readText(body: Readable): Promise<string> {
  let text = '';
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) text += chunk;
  return text;
}

function isStaleConnection(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** A request that got no answer at all: 502, with the socket error kept as `cause`. A client abort stays as it is. */
function unreachable(err: unknown, signal: AbortSignal | undefined, delivery: Delivery): unknown {
  if (signal?.aborted) return err;
  return new UpstreamUnreachable(`llama-server is unreachable: ${(err as Error).message}`, delivery.written, {
    cause: err,
  });
}

export async function getJson<T>(pool: UpstreamPool, path: string, signal?: AbortSignal): Promise<T> {
  const delivery: Delivery = { written: false };
  let res;
  try {
    res = await pool.request(tracked({ path, method: 'GET', signal }, delivery));
  } catch (err) {
    throw unreachable(err, signal, delivery);
  }
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new UpstreamError(upstreamMessage(text, res.statusCode), 500);
  return JSON.parse(text) as T;
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
