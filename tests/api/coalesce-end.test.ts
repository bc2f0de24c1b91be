import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { endSseTogether, endTogether } from '../../src/api/coalesce-end.js';

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

type Setup = (body: Readable, res: ServerResponse) => { beforeLast?: () => void };

/**
 * Streams two chunks a macrotask apart, the second with the end, as llama-server's last event and
 * terminator arrive, and counts the socket writes the response takes.
 */
async function socketWrites(chunks: [string, string], setup: Setup): Promise<{ writes: number; body: string }> {
  let writes = 0;
  server = createServer((_req, res) => {
    const socket = res.socket! as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
    for (const method of ['_write', '_writev'] as const) {
      const original = socket[method];
      socket[method] = function (this: unknown, ...args: unknown[]) {
        writes++;
        return original.apply(this, args);
      };
    }
    const body = new Readable({ read() {} });
    const { beforeLast } = setup(body, res);
    body.pipe(res);
    setImmediate(() => {
      body.push(chunks[0]);
      setImmediate(() => {
        beforeLast?.();
        body.push(chunks[1]);
        body.push(null);
      });
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const text = await new Promise<string>((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/' }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (s += c));
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end();
  });
  server.close();
  return { writes, body: text };
}

describe("a response's last chunk and its end in one socket write", () => {
  it('endTogether, called before the last chunk', async () => {
    const lines: [string, string] = ['{"done":false}\n', '{"done":true}\n'];
    // Without it: head + first chunk, last chunk, terminator.
    expect(await socketWrites(lines, () => ({}))).toEqual({ writes: 3, body: lines.join('') });
    expect(await socketWrites(lines, (_body, res) => ({ beforeLast: endTogether(res) }))).toEqual({
      writes: 2,
      body: lines.join(''),
    });
  });

  it('endSseTogether finds the last event of a llama-server stream by itself', async () => {
    const events: [string, string] = [
      'data: {"choices":[]}\n\n',
      'data: {"choices":[],"timings":{}}\n\ndata: [DONE]\n\n',
    ];
    expect(await socketWrites(events, () => ({}))).toEqual({ writes: 3, body: events.join('') });
    expect(
      await socketWrites(events, (body, res) => {
        endSseTogether(body, res);
        return {};
      }),
    ).toEqual({
      writes: 2,
      body: events.join(''),
    });
  });
});
