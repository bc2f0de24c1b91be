import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { FleetMembership } from '../../src/fleet/membership.js';
import { PgFleetRegistry } from '../../src/fleet/pg-registry.js';
import type { NodeReport } from '../../src/fleet/registry.js';
import { connectPostgres } from '../../src/store/postgres/pool.js';
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((d) => d.drop()));
});

/** A new empty database for one test. */
async function createDatabase(): Promise<string> {
  const db = await freshPostgresDatabase();
  databases.push(db);
  return db.url;
}

/** A registry on a pool of its own, which close() ends. */
const registryOn = (url: string) => new PgFleetRegistry(connectPostgres(url, { max: 3 }), true);

function report(id: string, extra: Partial<NodeReport> = {}): NodeReport {
  return {
    id,
    kind: 'gateway',
    url: `http://${id}:11434`,
    version: '0.1.0',
    models: [{ name: 'm:latest', aliases: [], digest: 'sha256:1', size: 10, needBytes: 20, tags: { name: 'm' } }],
    loaded: [],
    budget: { totalBytes: 100, usedBytes: 0 },
    queueDepth: 0,
    inFlight: 0,
    kvCacheUsage: 0,
    ...extra,
  };
}

/** Sets a node's last heartbeat `ms` in the past, as if it had stopped reporting then. */
async function age(url: string, id: string, ms: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`UPDATE corral_fleet_nodes SET heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1`, [
    id,
    ms / 1000,
  ]);
  await client.end();
}

describe('the PostgreSQL fleet registry', () => {
  it('creates its schema once, even with several nodes starting together', async () => {
    const url = await createDatabase();
    const registries = Array.from({ length: 4 }, () => registryOn(url));
    await Promise.all(registries.map((r) => r.ensureSchema()));
    await registries[0]!.ensureSchema();
    await registries[0]!.publish(report('a'));
    expect((await registries[3]!.nodes(10_000)).map((n) => n.id)).toEqual(['a']);
    await Promise.all(registries.map((r) => r.close()));
  });

  it('lists the nodes heard from within the expiry, with their reports, and forgets one that left', async () => {
    const url = await createDatabase();
    const a = registryOn(url);
    const b = registryOn(url);
    await a.ensureSchema();
    await a.publish(report('a', { queueDepth: 3 }));
    await b.publish(report('b'));
    const seen = await b.nodes(10_000);
    expect(seen.map((n) => [n.id, n.queueDepth])).toEqual([
      ['a', 3],
      ['b', 0],
    ]);
    expect(seen[0]!.ageMs).toBeLessThan(5_000);
    expect(seen[0]!.models[0]!.name).toBe('m:latest');

    await age(url, 'a', 11_000);
    expect((await b.nodes(10_000)).map((n) => n.id)).toEqual(['b']);
    await a.publish(report('a'));
    expect((await b.nodes(10_000)).map((n) => n.id)).toEqual(['a', 'b']);

    await a.leave('a');
    expect((await b.nodes(10_000)).map((n) => n.id)).toEqual(['b']);
    await Promise.all([a.close(), b.close()]);
  });

  it('lends an rpc-server to one model at a time, and takes it back from a node that went silent', async () => {
    const url = await createDatabase();
    const a = registryOn(url);
    await a.ensureSchema();
    await a.publish(report('a'));
    await a.publish(report('b'));
    const workers = ['10.0.0.7:50052', '10.0.0.8:50052'];
    expect(await a.claimWorkers('a', 'big', workers, 10_000)).toEqual([]);
    // Claiming again for the same model is a renewal, not a conflict.
    expect(await a.claimWorkers('a', 'big', workers, 10_000)).toEqual([]);
    const conflicts = await a.claimWorkers('b', 'other', ['10.0.0.8:50052', '10.0.0.9:50052'], 10_000);
    expect(conflicts).toEqual([{ endpoint: '10.0.0.8:50052', nodeId: 'a', model: 'big' }]);
    // All or nothing: the free endpoint was not taken either.
    expect(await a.claimWorkers('a', 'third', ['10.0.0.9:50052'], 10_000)).toEqual([]);

    await age(url, 'a', 11_000);
    expect(await a.claimWorkers('b', 'other', ['10.0.0.8:50052'], 10_000)).toEqual([]);
    await a.releaseWorkers('b', 'other');
    await a.publish(report('a'));
    expect(await a.claimWorkers('a', 'big', workers, 10_000)).toEqual([]);
    await a.close();
  });
});

describe('fleet membership', () => {
  it('warns when two processes report under one node id', async () => {
    const url = await createDatabase();
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (_o: object, msg: string) => void warnings.push(msg) };
    const member = () =>
      new FleetMembership({
        registry: registryOn(url),
        selfId: 'same',
        heartbeatMs: 60_000,
        expiryMs: 10_000,
        report: () => report('same'),
        log,
      });
    const first = member();
    await first.beat();
    await first.beat();
    expect(warnings).toEqual([]);
    const second = member();
    await second.beat();
    await first.beat();
    expect(warnings).toEqual(['another process reports under this node id: give every node its own fleet.node_id']);
    await Promise.all([first.stop(), second.stop()]);
  });
});
