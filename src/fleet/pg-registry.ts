import type { PostgresHandle } from '../store/postgres/pool.js';
import { FLEET_MIGRATIONS } from './pg-schema.js';
import type { FleetNode, FleetRegistry, NodeReport, RpcClaim } from './registry.js';

interface NodeRow {
  id: string;
  kind: 'gateway' | 'worker';
  url: string;
  report: NodeReport;
  started_at: Date;
  heartbeat_at: Date;
  age_ms: number;
}

/** Serialises claims on rpc-servers across the fleet (any constant every node shares). */
const CLAIM_LOCK = 0x72706363;

/**
 * The fleet registry in PostgreSQL, on the connection pool the store uses (a node makes two queries per
 * heartbeat). Liveness is judged by the database's clock, so nodes whose clocks disagree still agree on
 * who is live. `ownsPool`: close() ends the pool too (`corral worker`, which has no store).
 */
export class PgFleetRegistry implements FleetRegistry {
  private started = new Set<string>();

  constructor(
    private readonly db: PostgresHandle,
    private readonly ownsPool = false,
  ) {}

  async ensureSchema(): Promise<void> {
    await this.db.migrate('fleet', FLEET_MIGRATIONS);
  }

  async publish(report: NodeReport): Promise<string | undefined> {
    // The first report of this process restarts the node's `started_at`.
    const first = !this.started.has(report.id);
    // The sub-select reads the row as it was before this statement replaced it.
    const { rows } = await this.db.query<{ previous: string | null }>(
      `INSERT INTO corral_fleet_nodes (id, kind, url, report) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, url = EXCLUDED.url, report = EXCLUDED.report,
         heartbeat_at = now(),
         started_at = CASE WHEN $5 THEN now() ELSE corral_fleet_nodes.started_at END
       RETURNING (SELECT report->>'instance' FROM corral_fleet_nodes WHERE id = $1) AS previous`,
      [report.id, report.kind, report.url, JSON.stringify(report), first],
    );
    this.started.add(report.id);
    return rows[0]?.previous ?? undefined;
  }

  async nodes(expiryMs: number): Promise<FleetNode[]> {
    const { rows } = await this.db.query<NodeRow>(
      `SELECT id, kind, url, report, started_at, heartbeat_at,
              (extract(epoch FROM now() - heartbeat_at) * 1000)::float8 AS age_ms
         FROM corral_fleet_nodes
        WHERE heartbeat_at > now() - make_interval(secs => $1)
        ORDER BY id`,
      [expiryMs / 1000],
    );
    return rows.map((r) => ({
      ...r.report,
      id: r.id,
      kind: r.kind,
      url: r.url,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      ageMs: Math.max(0, r.age_ms),
    }));
  }

  async leave(id: string): Promise<void> {
    await this.db.query('DELETE FROM corral_fleet_rpc_claims WHERE node_id = $1', [id]);
    await this.db.query('DELETE FROM corral_fleet_nodes WHERE id = $1', [id]);
    this.started.delete(id);
  }

  async claimWorkers(nodeId: string, model: string, endpoints: string[], expiryMs: number): Promise<RpcClaim[]> {
    return this.db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
      const { rows } = await client.query<{ endpoint: string; node_id: string; model: string }>(
        `SELECT c.endpoint, c.node_id, c.model FROM corral_fleet_rpc_claims c
           JOIN corral_fleet_nodes n ON n.id = c.node_id
          WHERE c.endpoint = ANY($1) AND NOT (c.node_id = $2 AND c.model = $3)
            AND n.heartbeat_at > now() - make_interval(secs => $4)`,
        [endpoints, nodeId, model, expiryMs / 1000],
      );
      // Nothing is written when any endpoint is held: the transaction commits no change.
      if (rows.length > 0) return rows.map((r) => ({ endpoint: r.endpoint, nodeId: r.node_id, model: r.model }));
      await client.query(
        `INSERT INTO corral_fleet_rpc_claims (endpoint, node_id, model) SELECT unnest($1::text[]), $2, $3
         ON CONFLICT (endpoint) DO UPDATE SET node_id = EXCLUDED.node_id, model = EXCLUDED.model, claimed_at = now()`,
        [endpoints, nodeId, model],
      );
      return [];
    });
  }

  async releaseWorkers(nodeId: string, model: string): Promise<void> {
    await this.db.query('DELETE FROM corral_fleet_rpc_claims WHERE node_id = $1 AND model = $2', [nodeId, model]);
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.db.close();
  }
}
