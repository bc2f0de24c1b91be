import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamUnreachable } from '../../src/errors.js';
import { Transport } from '../../src/llama/transport.js';
import { freePort } from '../../src/runner/free-port.js';
import { bodyText } from '../helpers/runner.js';

// A stand-in server: the faults here (a kept-alive connection closed by the server just as it is reused)
// cannot be produced on demand with a real llama-server.
let server: Server;
let port: number;
let received = 0;
const sockets = new Set<Socket>();

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
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const at = (p: number): Transport => new Transport({ host: '127.0.0.1', port: p, apiKey: 'k' });

describe('the transport to a llama-server', () => {
  it('sends a request again when its kept-alive connection was closed before any answer', async () => {
    const http = at(port);
    // A first answer leaves a connection in the pool; the server then drops the next request on it.
    expect(await http.text('POST', '/warm', '{}')).toBe('{"ok":true}');
    received = 0;
    const res = await http.send('POST', '/drop-once', JSON.stringify({ x: 1 }));
    expect(res.status).toBe(200);
    expect(await bodyText(res.body)).toBe('{"ok":true}');
    expect(received).toBe(2);
    http.close();
  });

  it('gives up after one retry with a 502 naming the cause', async () => {
    const http = at(port);
    expect(await http.text('POST', '/warm', '{}')).toBe('{"ok":true}');
    received = 0;
    await expect(http.send('POST', '/always-drop', '{}')).rejects.toMatchObject({
      status: 502,
      message: expect.stringMatching(/unreachable/),
    });
    expect(received).toBe(2);
    http.close();
  });

  it('says whether a request that got no answer had been written to the server', async () => {
    const http = at(port);
    const sent = await http.send('POST', '/always-drop', '{}').catch((e: unknown) => e);
    expect(sent).toBeInstanceOf(UpstreamUnreachable);
    expect((sent as UpstreamUnreachable).delivered).toBe(true);
    http.close();

    const closed = at(await freePort('127.0.0.1'));
    const refused = await closed.send('POST', '/x', '{}').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamUnreachable);
    expect((refused as UpstreamUnreachable).delivered).toBe(false);
    expect((refused as UpstreamUnreachable).status).toBe(502);
    closed.close();
  });

  it('a kept-alive connection to a server that is gone: the retry is refused, and the request counts as never delivered', async () => {
    // What a killed child looks like to a request made before the gateway noticed: a pooled connection
    // it closed, then nobody listening. The request must stay retryable elsewhere (never delivered).
    const gone = createServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const gonePort = (gone.address() as AddressInfo).port;
    const http = at(gonePort);
    expect(await http.text('POST', '/warm', '{}')).toBe('{}');
    // In the same tick: the pooled socket's close has not been seen yet, so the request is written on
    // it, fails, and is sent again on a fresh connection, which is refused.
    gone.close();
    gone.closeAllConnections();
    const err = await http.send('POST', '/x', '{}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnreachable);
    expect((err as UpstreamUnreachable).delivered).toBe(false);
    http.close();
  });

  it('after a kept-alive connection turns out closed, the retry takes a fresh connection, not another pooled one', async () => {
    // Every pooled connection to a child that died is closed at once; requests written on any of them fail.
    // The server here drops each request that arrives on a connection from before, answering on new ones.
    const before = new Set<Socket>();
    let warming = true;
    const old = createServer((req, res) => {
      if (warming) before.add(req.socket);
      else if (before.has(req.socket)) return void req.socket.destroy();
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
    const http = at((old.address() as AddressInfo).port);
    // Two at once leave two connections in the pool.
    await Promise.all([http.text('POST', '/warm', '{}'), http.text('POST', '/warm', '{}')]);
    expect(http.idle).toBe(2);
    warming = false;
    const res = await http.send('POST', '/x', '{}');
    expect(res.status).toBe(200);
    expect(await bodyText(res.body)).toBe('{"ok":true}');
    http.close();
    old.closeAllConnections();
    await new Promise<void>((r) => old.close(() => r()));
  });

  it('a request written just after another connection broke mid-answer counts as never delivered', async () => {
    // What a killed llama-server does: its connections drop before its listening socket, so a request made
    // right after a stream broke is accepted, then reset, by a process that was already going down.
    const dying = createServer((req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' }).write('data: {}\n\n');
        setImmediate(() => req.socket.destroy());
      } else req.socket.destroy();
    });
    await new Promise<void>((r) => dying.listen(0, '127.0.0.1', r));
    const dyingPort = (dying.address() as AddressInfo).port;
    const control = at(dyingPort);
    const alone = await control.send('POST', '/x', '{}').catch((e: unknown) => e);
    // Without an earlier break, a request reset after it was written may be what broke the child.
    expect((alone as UpstreamUnreachable).delivered).toBe(true);
    control.close();
    const http = at(dyingPort);
    const stream = await http.send('POST', '/stream', '{}', { stream: true });
    await expect(bodyText(stream.body)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const after = await http.send('POST', '/x', '{}').catch((e: unknown) => e);
    expect(after).toBeInstanceOf(UpstreamUnreachable);
    expect((after as UpstreamUnreachable).delivered).toBe(false);
    http.close();
    await new Promise<void>((r) => dying.close(() => r()));
  });

  it('a closed transport refuses at once, as never delivered', async () => {
    const http = at(port);
    http.close();
    const err = await http.send('GET', '/health', undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnreachable);
    expect((err as UpstreamUnreachable).delivered).toBe(false);
  });
});
