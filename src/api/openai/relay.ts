import { Readable } from 'node:stream';
import { errorMessage } from '../../errors.js';

/**
 * Looks at the first event of a stream before it is sent and may return bytes to send ahead of it
 * (llama-server's Anthropic stream sometimes lacks its first event; see message-start.ts).
 */
export type HeadFix = (firstEvent: Buffer) => Promise<Buffer | undefined>;

const EVENT_END = Buffer.from('\n\n');

/**
 * llama-server's answer to a passed-through request, re-emitted as a stream Corral owns: chunks pass
 * unchanged (no parsing), with the upstream paused while the client is slower. What the relay adds is
 * the end of a stream whose child died: an event stream gets an error event in its API's shape and ends
 * cleanly, where piping the upstream body itself would have the reply torn down (a reset mid-stream).
 * Any other body is cut short with the error, since a truncated JSON answer must not look complete.
 * With `head`, the bytes up to the first blank line are held until it has looked at them.
 * `done` settles once the upstream body is closed (the slot can go to the next request).
 */
export function relay(
  upstream: Readable,
  errorEvent: ((message: string) => string) | undefined,
  head?: HeadFix,
): { out: Readable; done: Promise<void> } {
  // 'first': collecting the first event; 'looking': waiting for `head`; 'open': passing chunks on.
  let state: 'first' | 'looking' | 'open' = head ? 'first' : 'open';
  let held: Buffer[] = [];
  let ended = false;
  const out = new Readable({
    read: () => {
      if (state === 'open') upstream.resume();
    },
    destroy: (err, cb) => {
      // A client that left: stop the generation too.
      upstream.destroy();
      cb(err);
    },
  });
  const push = (chunk: Buffer): void => {
    if (!out.push(chunk)) upstream.pause();
  };
  /** Sends what `head` added and what was held, then lets the upstream flow (once). */
  const release = (prefix?: Buffer): void => {
    if (state === 'open') return;
    state = 'open';
    if (out.destroyed) return;
    if (prefix) out.push(prefix);
    const first = Buffer.concat(held);
    held = [];
    if (first.length) push(first);
    if (ended) out.push(null);
    else upstream.resume();
  };
  upstream.on('data', (chunk: Buffer) => {
    if (state === 'open') return push(chunk);
    held.push(chunk);
    if (state === 'looking') return;
    const first = Buffer.concat(held);
    held = [first];
    if (!first.includes(EVENT_END)) return;
    state = 'looking';
    upstream.pause();
    head!(first).then(release, () => release());
  });
  upstream.once('end', () => {
    ended = true;
    // While `head` looks, its release ends the stream.
    if (state === 'first') release();
    else if (state === 'open') out.push(null);
  });
  upstream.on('error', (err) => {
    release();
    if (out.destroyed) return;
    if (!errorEvent) return void out.destroy(err);
    out.push(errorEvent(errorMessage(err)));
    out.push(null);
  });
  const done = new Promise<void>((resolve) => upstream.once('close', resolve));
  return { out, done };
}

/** The error event of an interrupted stream, in the shape the route's clients parse. */
export function streamErrorEvent(path: string, who = 'llama-server'): (message: string) => string {
  const reason = (m: string): string => `${who} stopped mid-answer: ${m}`;
  if (path === '/v1/messages')
    return (m) =>
      `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message: reason(m) } })}\n\n`;
  if (path === '/v1/responses')
    return (m) =>
      `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'server_error', message: reason(m), param: null })}\n\n`;
  return (m) => `data: ${JSON.stringify({ error: { message: reason(m), type: 'server_error', code: null } })}\n\n`;
}
