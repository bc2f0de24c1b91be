import { describe, expect, it } from 'vitest';
import { fleetCredentials } from '../../src/fleet/credentials.js';
import type { FleetNode } from '../../src/fleet/registry.js';
import { type LocalView, rankTargets } from '../../src/fleet/routing.js';
import { splitNeed, withRpcGroups } from '../../src/fleet/rpc.js';

const GB = 1e9;

function node(id: string, opts: Partial<FleetNode> & { has?: string[]; running?: [string, number][] }): FleetNode {
  return {
    id,
    kind: 'gateway',
    url: `http://${id}`,
    version: '0',
    models: (opts.has ?? []).map((name) => ({ name, aliases: [], digest: '', size: GB, needBytes: 2 * GB, tags: {} })),
    loaded: (opts.running ?? []).map(([name, queue]) => ({ name, state: 'ready', inFlight: queue, queued: 0, ps: {} })),
    budget: opts.budget ?? { totalBytes: 0, usedBytes: 0 },
    queueDepth: opts.queueDepth ?? 0,
    inFlight: 0,
    kvCacheUsage: 0,
    startedAt: new Date(),
    heartbeatAt: new Date(),
    ageMs: 0,
  };
}

const unknown: LocalView = { known: false, name: 'm:latest', loaded: false, needBytes: 0, freeBytes: 0 };
const here = (free: number, loaded = false): LocalView => ({
  known: true,
  name: 'm:latest',
  loaded,
  needBytes: 2 * GB,
  freeBytes: free,
});
const ids = (targets: ReturnType<typeof rankTargets>) => targets.map((t) => (t.kind === 'local' ? 'local' : t.node.id));

describe('where a request for a model runs', () => {
  it('here when it is loaded here, whatever the others have', () => {
    expect(ids(rankTargets(here(0, true), [node('b', { has: ['m:latest'], running: [['m:latest', 0]] })]))).toEqual([
      'local',
    ]);
  });

  it('else on the nodes that have it loaded, least queued first, then the others by fit', () => {
    const peers = [
      node('b', { has: ['m:latest'], running: [['m:latest', 3]] }),
      node('c', { has: ['m:latest'], running: [['m:latest', 1]] }),
      node('d', { has: ['m:latest'], budget: { totalBytes: 10 * GB, usedBytes: 0 } }),
      node('e', { has: ['other:latest'] }),
    ];
    expect(ids(rankTargets(here(GB), peers))).toEqual(['c', 'b', 'd', 'local']);
  });

  it('here when it fits here without evicting, even if another node has more room', () => {
    const peers = [node('b', { has: ['m:latest'] })];
    expect(ids(rankTargets(here(3 * GB), peers))).toEqual(['local']);
  });

  it('else where the budget fits it best: fitting nodes by room left, then those that must evict', () => {
    const peers = [
      node('b', { has: ['m:latest'], budget: { totalBytes: 4 * GB, usedBytes: 3 * GB } }),
      node('c', { has: ['m:latest'], budget: { totalBytes: 8 * GB, usedBytes: 1 * GB } }),
      node('d', { has: ['m:latest'], budget: { totalBytes: 8 * GB, usedBytes: 4 * GB } }),
    ];
    expect(ids(rankTargets(here(GB), peers))).toEqual(['c', 'd', 'local', 'b']);
    expect(ids(rankTargets(unknown, peers))).toEqual(['c', 'd', 'b']);
  });

  it('nowhere when no node has it, and by alias when a node names it so', () => {
    expect(rankTargets(unknown, [node('b', { has: ['x:latest'] })])).toEqual([]);
    const b = node('b', { has: ['x:latest'] });
    b.models[0]!.aliases = ['m:latest'];
    expect(ids(rankTargets(unknown, [b]))).toEqual(['b']);
  });
});

describe('fleet credentials', () => {
  const secret = 'x'.repeat(32);
  const claims = { from: 'a', requestId: 'r1', clientLocal: true, clientIp: '127.0.0.1' };

  it('are accepted once, by the node, method and URL they were made for', async () => {
    const a = fleetCredentials('a', secret);
    const c = fleetCredentials('c', secret);
    const token = await a.sign('c', 'POST', '/api/chat', claims);
    await expect(fleetCredentials('b', secret).verify(token, 'POST', '/api/chat')).rejects.toThrow();
    await expect(c.verify(token, 'POST', '/api/generate')).rejects.toThrow(/another request/);
    expect(await c.verify(token, 'POST', '/api/chat')).toEqual(claims);
    await expect(c.verify(token, 'POST', '/api/chat')).rejects.toThrow(/already used/);
  });

  it('are refused when signed with another secret or expired', async () => {
    const token = await fleetCredentials('a', 'y'.repeat(32)).sign('c', 'POST', '/x', claims);
    await expect(fleetCredentials('c', secret).verify(token, 'POST', '/x')).rejects.toThrow();
    let now = Date.now();
    const clock = () => now;
    const old = await fleetCredentials('a', secret, clock).sign('c', 'POST', '/x', claims);
    now += 60_000;
    await expect(fleetCredentials('c', secret, clock).verify(old, 'POST', '/x')).rejects.toThrow(/EXP|exp/);
  });

  it('need a secret of 32 characters at least', () => {
    expect(() => fleetCredentials('a', 'short')).toThrow(/at least 32/);
  });
});

describe('a model on rpc workers', () => {
  const w = (endpoint: string, gb: number) => ({ endpoint, memoryBytes: gb * GB });

  it('splits its memory need in proportion to what each worker lends; a CPU-only node keeps none', () => {
    const split = splitNeed(9 * GB, [w('a:1', 8), w('b:1', 16)], 0);
    expect(split.localBytes).toBe(0);
    expect(split.shares.map((s) => s.bytes)).toEqual([3 * GB, 6 * GB]);
    // A node with a GPU keeps its own part; a worker of unknown size counts as the average.
    const gpu = splitNeed(12 * GB, [w('a:1', 8), { endpoint: 'c:1', memoryBytes: 0 }], 8 * GB);
    expect([gpu.localBytes, ...gpu.shares.map((s) => s.bytes)]).toEqual([4 * GB, 4 * GB, 4 * GB]);
    expect(splitNeed(5, [], 0).localBytes).toBe(5);
  });

  it('excludes the models it shares a worker with, as a swap group', () => {
    const m = (name: string, rpc?: 'auto' | string[]) => ({ name, rpc }) as never;
    const policy = withRpcGroups({ groups: { mine: ['x'] } } as never, [
      m('auto-1', 'auto'),
      m('ab', ['a:1', 'b:1']),
      m('bc', ['b:1', 'c:1']),
      m('d', ['d:1']),
      m('plain'),
    ]);
    expect(policy.groups).toEqual({
      mine: ['x'],
      'rpc workers of auto-1 and ab': ['auto-1', 'ab'],
      'rpc workers of auto-1 and bc': ['auto-1', 'bc'],
      'rpc workers of auto-1 and d': ['auto-1', 'd'],
      'rpc workers of ab and bc': ['ab', 'bc'],
    });
  });
});
