import { Readable } from 'node:stream';
import { errorMessage } from '../../errors.js';

/**
 * llama-server's answer to a passed-through request, re-emitted as a stream Corral owns: chunks pass
 * unchanged (no parsing), with the upstream paused while the client is slower. What the relay adds is
 * the end of a stream whose child died: an event stream gets an error event in its API's shape and ends
 * cleanly, where piping the upstream body itself would have the reply torn down (a reset mid-stream).
 * Any other body is cut short with the error, since a truncated JSON answer must not look complete.
 * `done` settles once the upstream body is closed (the slot can go to the next request).
 */
export function relay(
  upstream: Readable,
  errorEvent: ((message: string) => string) | undefined,
): { out: Readable; done: Promise<void> } {
  const out = new Readable({
    read: () => upstream.resume(),
    destroy: (err, cb) => {
      // A client that left: stop the generation too.
      upstream.destroy();
      cb(err);
    },
  });
  upstream.on('data', (chunk: Buffer) => {
    if (!out.push(chunk)) upstream.pause();
  });
  upstream.once('end', () => out.push(null));
  upstream.on('error', (err) => {
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
