import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { chunkedDecoder } from './chunked.js';

export interface StreamAnswer {
  status: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** The body without its transfer framing. Destroying it closes the connection, which stops the generation. */
  body: Readable;
}

/** Why a request got no answer, and whether it had been written to the connection (see client.ts). */
export class NoAnswer extends Error {
  constructor(
    message: string,
    readonly written: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * POSTs a JSON body on a connection of its own and answers with the response head and the body.
 *
 * Streamed generations do not go through undici: llama-server closes the connection after every
 * streamed answer, so a pool has nothing to reuse, and undici's per-request machinery (dispatcher,
 * llhttp in WebAssembly, its body stream, the 'reset' teardown) cost about 0.3–0.5 ms of gateway CPU
 * per request in a side-by-side proxy harness, a third of what the hop costs. Here the request leaves
 * in one write and the answer is cut with a few indexOf calls.
 */
export function streamPost(host: string, port: number, path: string, json: string, headers: Record<string, string>, signal?: AbortSignal): Promise<StreamAnswer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const fields = Object.entries(headers);
    // Header injection: request ids are checked where they come in, but this writes raw bytes.
    if (fields.some(([k, v]) => /[\r\n]/.test(k + v))) return reject(new Error('an upstream header contains a line break'));
    const extra = fields.map(([k, v]) => `${k}: ${v}\r\n`).join('');
    let written = false;
    let answered = false;
    let head: Buffer | undefined;
    let feed: ((buffer: Buffer) => void) | undefined;
    let untilClose: ((buffer: Buffer) => void) | undefined;
    let finished = false;
    const socket: Socket = connect({ host, port, noDelay: true });
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

    function fail(err: Error): void {
      if (finished) return;
      finished = true;
      done();
      socket.destroy();
      if (!answered) {
        answered = true;
        reject(err);
      } else body.destroy(err);
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

    socket.setTimeout(CONNECT_TIMEOUT_MS, () => fail(new NoAnswer(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`, false)));
    socket.once('connect', () => {
      socket.setTimeout(0);
      written = true;
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n${extra}\r\n${json}`,
      );
    });
    socket.on('data', (buffer: Buffer) => {
      try {
        if (feed) return feed(buffer);
        head = head ? Buffer.concat([head, buffer]) : buffer;
        const at = head.indexOf(HEAD_END);
        if (at < 0) {
          if (head.length > MAX_HEAD) throw new Error('response head too large');
          return;
        }
        const answer = parseHead(head.toString('latin1', 0, at), body);
        const rest = head.subarray(at + 4);
        head = undefined;
        feed = framing(answer.headers, push, end);
        answered = true;
        resolve(answer);
        if (rest.length) feed(rest);
      } catch (err) {
        fail(answered ? (err as Error) : new NoAnswer((err as Error).message, written));
      }
    });
    socket.on('end', () => {
      // A body delimited by the connection's end (no length, not chunked) ends here.
      if (answered && !finished && feed === untilClose) return end();
    });
    socket.on('error', (err) => fail(answered ? err : new NoAnswer(err.message, written, { cause: err })));
    socket.on('close', () => {
      if (!finished) fail(answered ? new Error('llama-server closed the connection before the answer was complete') : new NoAnswer('llama-server closed the connection without answering', written));
    });

    function framing(h: Record<string, string>, onData: (b: Buffer) => void, onEnd: () => void): (buffer: Buffer) => void {
      if (/\bchunked\b/i.test(h['transfer-encoding'] ?? '')) return chunkedDecoder(onData, onEnd);
      const length = h['content-length'];
      if (length === undefined) return (untilClose = onData);
      let left = Number(length);
      if (!Number.isSafeInteger(left) || left < 0) throw new Error(`invalid content-length "${length}"`);
      if (left === 0) queueMicrotask(onEnd);
      return (buffer) => {
        if (left <= 0) return;
        const part = buffer.length > left ? buffer.subarray(0, left) : buffer;
        left -= part.length;
        onData(part);
        if (left === 0) onEnd();
      };
    }
  });
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
