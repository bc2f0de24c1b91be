import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The status the receiver answered with. */
  answered: number;
}

/**
 * A local webhook endpoint that records every POST by path (without the query). `failNext(path, n,
 * match)` answers the next n matching posts to `path` with 500, to see Corral retry.
 */
export async function startReceiver() {
  const received: Received[] = [];
  const failures = new Map<string, { n: number; match: (body: string) => boolean }>();
  const events = new EventEmitter<{ received: [Received] }>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://receiver').pathname;
      const body = Buffer.concat(chunks).toString('utf8');
      const failing = failures.get(path);
      const fail = failing !== undefined && failing.n > 0 && failing.match(body);
      if (fail) failing.n--;
      const r = { path, headers: req.headers, body, answered: fail ? 500 : 200 };
      received.push(r);
      res.writeHead(r.answered).end();
      events.emit('received', r);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    /** Accepted posts to `path` whose body matches. */
    accepted(path: string, match: (body: string, r: Received) => boolean = () => true): Received[] {
      return received.filter((r) => r.path === path && r.answered === 200 && match(r.body, r));
    },
    failNext(path: string, n: number, match: (body: string) => boolean = () => true): void {
      failures.set(path, { n, match });
    },
    /** Resolves with the first accepted post (already received or still to come) that matches. */
    waitFor(path: string, match: (body: string, r: Received) => boolean, timeoutMs = 30_000): Promise<Received> {
      const hit = received.find((r) => r.path === path && r.answered === 200 && match(r.body, r));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('received', on);
          reject(new Error(`no matching post to ${path} within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = (r: Received): void => {
          if (r.path !== path || r.answered !== 200 || !match(r.body, r)) return;
          clearTimeout(timer);
          events.off('received', on);
          resolve(r);
        };
        events.on('received', on);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
