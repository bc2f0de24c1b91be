import type { PoolClient } from 'pg';

/**
 * The fleet's tables: a migration of its own, applied idempotently at start, kept apart from the store's
 * versioned migrations so the fleet does not depend on them. The advisory lock serialises nodes that
 * start together (two concurrent CREATE TABLE IF NOT EXISTS can otherwise both try to create the type).
 */
export const FLEET_SCHEMA_VERSION = 1;

const FLEET_SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS corral_fleet_nodes (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('gateway', 'worker')),
  url text NOT NULL,
  report jsonb NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS corral_fleet_nodes_heartbeat ON corral_fleet_nodes (heartbeat_at);
CREATE TABLE IF NOT EXISTS corral_fleet_rpc_claims (
  endpoint text PRIMARY KEY,
  node_id text NOT NULL,
  model text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);
`;

/** An arbitrary constant shared by every node: the key of the schema lock. */
const SCHEMA_LOCK = 0x636f7272616c;

export async function applyFleetSchema(client: PoolClient): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await client.query(FLEET_SCHEMA_V1);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
