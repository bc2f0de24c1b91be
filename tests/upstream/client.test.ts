import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../../src/upstream/client.js';
import { createPool } from '../../src/upstream/pool.js';
import { freePort } from '../../src/runner/free-port.js';
import { UpstreamUnreachable } from '../../src/errors.js';

// A stand-in server: the one fault here (a pooled socket closed by the server just as it is reused)
// cannot be produced on demand with a real llama-server.
let server: Server;
let url: string;
let received = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    received++;
    if (req.url === '/drop-once' && received === 1) {
      req.socket.destroy();
      return;
    }
    if (req.url === '/always-drop') {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('postJson', () => {
  it('sends a request again when its connection was closed before any answer', async () => {
    received = 0;
    const pool = createPool(url, {});
    const res = await postJson(pool, '/drop-once', { x: 1 });
    expect(res.status).toBe(200);
    expect(await res.body.setEncoding('utf8').read()).toBeDefined();
    expect(received).toBe(2);
    await pool.close();
  });

  it('gives up after one retry with a 502 naming the cause', async () => {
    received = 0;
    const pool = createPool(url, {});
    await expect(postJson(pool, '/always-drop', {})).rejects.toMatchObject({
      status: 502,
      message: expect.stringMatching(/unreachable/),
    });
    expect(received).toBe(2);
    await pool.close();
  });

  it('says whether a request that got no answer had been written to the server', async () => {
    const pool = createPool(url, { connections: 4 });
    const sent = await postJson(pool, '/always-drop', {}).catch((e: unknown) => e);
    expect(sent).toBeInstanceOf(UpstreamUnreachable);
    expect((sent as UpstreamUnreachable).delivered).toBe(true);
    await pool.close();

    const closed = createPool(`http://127.0.0.1:${await freePort('127.0.0.1')}`, { connections: 4 });
    const refused = await postJson(closed, '/x', {}).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamUnreachable);
    expect((refused as UpstreamUnreachable).delivered).toBe(false);
    expect((refused as UpstreamUnreachable).status).toBe(502);
    await closed.close();
  });
});
