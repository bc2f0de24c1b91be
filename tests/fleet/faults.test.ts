import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgFleetRegistry } from '../../src/fleet/pg-registry.js';
import type { NodeReport } from '../../src/fleet/registry.js';
import { freePort } from '../../src/runner/free-port.js';
import { FLEET_SECRET } from '../helpers/fleet.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { TestPostgres } from '../setup/postgres-server.js';
import { connectPostgres } from '../../src/store/postgres/pool.js';

/**
 * Peers that misbehave on purpose (a real node cannot be made to die after exactly one chunk, or to
 * read a request and vanish): stand-in HTTP servers registered in the fleet's database as nodes, in
 * front of a real Corral node A.
 */
let postgres: TestPostgres;
let registry: PgFleetRegistry;
let a: TestGateway;
const peers: Server[] = [];
const seen: { node: string; headers: IncomingMessage['headers']; body: string }[] = [];

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;

async function standIn(id: string, behaviour: Behaviour): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ node: id, headers: req.headers, body });
      behaviour(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  peers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Registers a node that has `model` loaded, with `queue` requests on it (the least queued is tried first). */
async function register(id: string, url: string, model: string, queue: number): Promise<void> {
  const report: NodeReport = {
    id,
    kind: 'gateway',
    url,
    version: 'test',
    models: [{ name: model, aliases: [], digest: 'sha256:0', size: 1, needBytes: 1, tags: { name: model } }],
    loaded: [{ name: model, state: 'ready', inFlight: queue, queued: 0, ps: { name: model } }],
    budget: { totalBytes: 0, usedBytes: 0 },
    queueDepth: queue,
    inFlight: queue,
    kvCacheUsage: 0,
  };
  await registry.publish(report);
}

const sse = (res: ServerResponse, first: string): void => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(first);
  // Dies mid-answer, as a node that crashed would.
  setTimeout(() => res.socket?.destroy(), 20);
};

beforeAll(async () => {
  // A server of its own: a test stops it, and the run's shared one must stay up for the other files.
  postgres = await TestPostgres.create();
  const database = await postgres.createDatabase();
  registry = new PgFleetRegistry(connectPostgres(database), true);
  await registry.ensureSchema();
  const chunk = `data: ${JSON.stringify({ choices: [{ delta: { content: 'Hi' } }] })}\n\n`;
  await register('p-sse', await standIn('p-sse', (_q, res) => sse(res, chunk)), 'streamed:latest', 0);
  // Reads the whole request, then its connection drops without a word.
  await register('p-lost', await standIn('p-lost', (req) => req.socket.destroy()), 'lost:latest', 0);
  await register('p-lost-2', await standIn('p-lost-2', (_q, res) => res.end('{}')), 'lost:latest', 5);
  // Nothing listens at the first node's address; the second answers.
  await register('p-down', `http://127.0.0.1:${await freePort()}`, 'spare:latest', 0);
  const answer: Behaviour = (_q, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-corral-node': 'p-up' });
    res.end(JSON.stringify({ done: true, response: 'from p-up' }));
  };
  await register('p-up', await standIn('p-up', answer), 'spare:latest', 3);
  a = await startGateway({ store: { url: database }, fleet: { enabled: true, node_id: 'a', secret: FLEET_SECRET } });
  await a.gw.fleet!.membership.beat();
}, 60_000);

afterAll(async () => {
  await a?.close();
  for (const p of peers) p.closeAllConnections();
  await Promise.all(peers.map((p) => new Promise((r) => p.close(r))));
  await registry?.close();
  await postgres?.destroy();
});

describe('forwarding when a node fails', () => {
  it.each([
    [
      '/v1/chat/completions',
      /^data: \{"error":\{"message":"node \\"p-sse\\" stopped mid-answer: .+","type":"server_error"/m,
    ],
    [
      '/v1/messages',
      /^event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"node \\"p-sse\\" stopped/m,
    ],
  ])('a stream of %s cut short ends with an error event in its shape, after what arrived', async (path, shape) => {
    const res = await post(`${a.url}${path}`, {
      model: 'streamed',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      max_tokens: 8,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.startsWith('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n')).toBe(true);
    expect(text).toMatch(shape);
  });

  it('a request written to a node that then vanished is not sent again: 502, and no other node sees it', async () => {
    const before = seen.length;
    const res = await post(`${a.url}/api/generate`, { model: 'lost', prompt: 'hi', stream: false });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /^node "p-lost" failed before answering: .*the request was not sent again/,
    );
    expect(seen.slice(before).map((s) => s.node)).toEqual(['p-lost']);
  });

  it('an unreachable node is skipped for the next one; the request carries its id and a fleet credential', async () => {
    const before = seen.length;
    const body = JSON.stringify({ model: 'spare', prompt: 'hi', stream: false });
    const res = await fetch(`${a.url}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'trace-77', origin: 'http://localhost:3000' },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true, response: 'from p-up' });
    expect(res.headers.get('x-corral-node')).toBe('p-up');
    const [got] = seen.slice(before);
    expect(got?.node).toBe('p-up');
    expect(got?.body).toBe(body);
    expect(got?.headers['x-request-id']).toBe('trace-77');
    expect(String(got?.headers['x-corral-fleet'])).toMatch(/^eyJ/);
    expect(got?.headers.origin).toBeUndefined();
    // The unreachable node is passed over at once from now on.
    expect(a.gw.fleet!.membership.peers().map((p) => p.id)).not.toContain('p-down');
  });
});

describe('when PostgreSQL cannot be reached', () => {
  it('the node reports not-ready but goes on routing with the fleet it last saw', async () => {
    expect((await fetch(`${a.url}/ready`)).status).toBe(200);
    await postgres.stop();
    await a.gw.fleet!.membership.beat();
    const ready = await fetch(`${a.url}/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toMatch(/fleet database unreachable/);
    const res = await post(`${a.url}/api/generate`, { model: 'spare', prompt: 'hi', stream: false });
    expect(await res.json()).toEqual({ done: true, response: 'from p-up' });
  });
});
