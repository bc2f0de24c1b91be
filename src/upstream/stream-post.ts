import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { UpstreamUnreachable } from '../errors.js';
import { chunkedDecoder } from './chunked.js';

export interface StreamAnswer {
  status: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** The body without its transfer framing. Destroying it closes the connection, which stops the generation. */
  body: Readable;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * POSTs a JSON body on a connection of its own and answers with the response head and the body.
 * A request that got no answer rejects with UpstreamUnreachable, saying whether it had been written;
 * an aborted `signal` rejects (or ends the body) with the signal's reason.
 *
 * Streamed generations do not go through undici: llama-server closes the connection after every
 * streamed answer, so a pool has nothing to reuse, and undici's per-request machinery (dispatcher,
 * llhttp in WebAssembly, its body stream, the 'reset' teardown) cost about 0.3–0.5 ms of gateway CPU
 * per request in a side-by-side proxy harness, a third of what the hop costs. Here the request leaves
 * in one write and the answer is cut with a few indexOf calls.
 */
export function streamPost(
  host: string,
  port: number,
  path: string,
  json: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<StreamAnswer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const fields = Object.entries(headers);
    // Header injection: request ids are checked where they come in, but this writes raw bytes.
    if (fields.some(([k, v]) => /[\r\n]/.test(k + v)))
      return reject(new Error('an upstream header contains a line break'));
    const extra = fields.map(([k, v]) => `${k}: ${v}\r\n`).join('');

    let written = false;
    let answered = false;
    let finished = false;
    let head: Buffer | undefined;
    let framing: Framing | undefined;
    const socket = connect({ host, port, noDelay: true });
    const body = new Readable({
      read: () => socket.resume(),
      destroy: (err, cb) => {
        // A reader that lets go ends the exchange; the closing socket is not llama-server's failure.
        finished = true;
        done();
        socket.destroy();
        cb(err);
      },
    });
    const onAbort = (): void => fail(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);

    /** Before the head: no answer (a 502 for the client). After it: the body ends with the error. */
    function fail(err: Error): void {
      if (finished) return;
      finished = true;
      done();
      socket.destroy();
      if (answered) body.destroy(err);
      else {
        answered = true;
        const aborted = signal?.aborted && err === signal.reason;
        reject(
          aborted
            ? err
            : new UpstreamUnreachable(`llama-server is unreachable: ${err.message}`, written, { cause: err }),
        );
      }
    }
    function push(payload: Buffer): void {
      if (!body.push(payload)) socket.pause();
    }
    function end(): void {
      if (finished) return;
      finished = true;
      done();
      // The socket is closed when the reader has taken the end (the body's autoDestroy), not before:
      // llama-server closes its side too, as asked.
      body.push(null);
    }

    socket.setTimeout(CONNECT_TIMEOUT_MS, () => fail(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`)));
    socket.once('connect', () => {
      socket.setTimeout(0);
      written = true;
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n${extra}\r\n${json}`,
      );
    });
    socket.on('data', (buffer: Buffer) => {
      try {
        if (framing) return framing.feed(buffer);
        head = head ? Buffer.concat([head, buffer]) : buffer;
        const at = head.indexOf(HEAD_END);
        if (at < 0) {
          if (head.length > MAX_HEAD) throw new Error('response head too large');
          return;
        }
        const answer = parseHead(head.toString('latin1', 0, at), body);
        const rest = head.subarray(at + 4);
        head = undefined;
        framing = bodyFraming(answer.headers, push, end);
        answered = true;
        resolve(answer);
        if (rest.length) framing.feed(rest);
      } catch (err) {
        fail(err as Error);
      }
    });
    socket.on('end', () => {
      if (framing?.endsWithConnection) end();
    });
    socket.on('error', fail);
    socket.on('close', () =>
      fail(
        new Error(
          answered
            ? 'llama-server closed the connection before the answer was complete'
            : 'llama-server closed the connection without answering',
        ),
      ),
    );
  });
}

interface Framing {
  feed(buffer: Buffer): void;
  /** Neither chunked nor with a length: the body is whatever comes until the connection ends. */
  endsWithConnection: boolean;
}

function bodyFraming(headers: Record<string, string>, onData: (payload: Buffer) => void, onEnd: () => void): Framing {
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? ''))
    return { feed: chunkedDecoder(onData, onEnd), endsWithConnection: false };
  const length = headers['content-length'];
  if (length === undefined) return { feed: onData, endsWithConnection: true };
  let left = Number(length);
  if (!Number.isSafeInteger(left) || left < 0) throw new Error(`invalid content-length "${length}"`);
  if (left === 0) queueMicrotask(onEnd);
  return {
    feed: (buffer) => {
      if (left <= 0) return;
      const part = buffer.length > left ? buffer.subarray(0, left) : buffer;
      left -= part.length;
      onData(part);
      if (left === 0) onEnd();
    },
    endsWithConnection: false,
  };
}

function parseHead(text: string, body: Readable): StreamAnswer {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1];
  if (!status) throw new Error(`not an HTTP response: ${lines[0]!.slice(0, 40)}`);
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(status), headers, body };
}
