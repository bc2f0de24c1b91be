import type { PostgresMigration } from '../store/postgres/migrate.js';

/**
 * The fleet's tables, as migrations of their own component ("fleet"): the store's migrations do not
 * know the fleet, and the fleet's never touch the store's tables. Append-only, like every migration list.
 */
export const FLEET_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'nodes and rpc-server claims',
    sql: `
CREATE TABLE corral_fleet_nodes (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('gateway', 'worker')),
  url text NOT NULL,
  report jsonb NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corral_fleet_nodes_heartbeat ON corral_fleet_nodes (heartbeat_at);
CREATE TABLE corral_fleet_rpc_claims (
  endpoint text PRIMARY KEY,
  node_id text NOT NULL,
  model text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);`,
  },
];
