import type { FastifyReply, FastifyRequest } from 'fastify';

export interface SseStream {
  send(event: string, data: string, id?: string | number): void;
  /** Runs when the client goes away (or the server closes the stream). */
  onClose(fn: () => void): void;
  close(): void;
}

/** CR, LF and CRLF all end a line in an event stream: a CR left inside a field starts a new field. */
const LINE_BREAK = /\r\n|\r|\n/;
/** Event names and ids are single fields; a NUL makes a browser drop the id. */
const oneLine = (text: string) => text.replace(/[\r\n\0]/g, ' ');

/**
 * Opens a Server-Sent Events stream on the raw response. Fastify steps aside (hijack) because an
 * SSE response never ends on its own; a comment line every 15 s keeps proxies from timing it out.
 */
export function openSse(request: FastifyRequest, reply: FastifyReply): SseStream {
  reply.hijack();
  const res = reply.raw;
  const headers = reply.getHeaders();
  res.writeHead(200, {
    ...(headers as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  const closers: (() => void)[] = [];
  let closed = false;
  const heartbeat = setInterval(() => res.write(': ping\n\n'), 15_000);
  heartbeat.unref();
  const finish = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const fn of closers) fn();
    res.end();
  };
  request.raw.on('close', finish);
  res.on('close', finish);
  return {
    send(event, data, id) {
      if (closed) return;
      let out = `event: ${oneLine(event)}\n`;
      if (id !== undefined) out += `id: ${oneLine(String(id))}\n`;
      for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
      res.write(`${out}\n`);
    },
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
    close: finish,
  };
}

/** Coalesces bursts (a load emits several `changed` events within milliseconds) into one call. */
export function debounce(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const wrapped = (): void => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
  wrapped.cancel = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return wrapped;
}
