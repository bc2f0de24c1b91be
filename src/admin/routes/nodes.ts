import type { FastifyInstance } from 'fastify';
import type { FleetNode } from '../../fleet/registry.js';
import { nodeLoaded, nodeModel } from '../../fleet/routing.js';
import type { AdminContext } from '../context.js';
import type { FleetView } from '../deps.js';
import { formatBytes } from '../view-models.js';

/** One row of the Nodes page. */
function nodeRow(n: FleetNode, self: string) {
  const { totalBytes, usedBytes } = n.budget;
  return {
    id: n.id,
    self: n.id === self,
    kind: n.kind,
    url: n.kind === 'worker' ? (n.worker?.endpoint ?? '—') : n.url,
    state: n.kind === 'worker' && !n.worker ? 'rpc-server down' : 'live',
    version: n.version,
    models: n.models.map((m) => m.name),
    loaded: n.loaded.map((l) => ({ name: l.name, state: l.state, inFlight: l.inFlight, queued: l.queued })),
    load: `${n.inFlight} running, ${n.queueDepth} waiting, slots ${Math.round(n.kvCacheUsage * 100)}% busy`,
    memory:
      n.kind === 'worker'
        ? `lends ${formatBytes(n.worker?.memoryBytes ?? totalBytes)}`
        : `${formatBytes(usedBytes)} of ${totalBytes === 0 ? 'no limit' : formatBytes(totalBytes)}`,
    heartbeat: `${(n.ageMs / 1000).toFixed(1)} s ago`,
    startedAt: n.startedAt.toISOString(),
  };
}

/** Where a model runs in the fleet, in words for its page; undefined outside a fleet. */
export function whereItRuns(fleet: FleetView | undefined, name: string): string | undefined {
  if (!fleet) return undefined;
  const nodes = fleet.nodes().filter((n) => n.kind === 'gateway');
  const having = nodes.filter((n) => nodeModel(n, name));
  const loaded = having.filter((n) => nodeLoaded(n, nodeModel(n, name)!.name)).map((n) => n.id);
  const listed = having.map((n) => n.id).join(', ') || 'no node';
  return `${loaded.length ? `loaded on ${loaded.join(', ')}; ` : 'loaded nowhere; '}in the catalogue of ${listed}`;
}

/** The fleet's nodes: state, models, load, last heartbeat (or why there is no fleet). */
export function registerNodeRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/admin/nodes', async (request, reply) => {
    const fleet = ctx.deps.fleetView;
    const rows = fleet ? fleet.nodes().map((n) => nodeRow(n, fleet.selfId)) : [];
    return ctx.page(request, reply, 'nodes', 'Nodes', {
      fleet: fleet !== undefined,
      health: fleet?.health(),
      rows,
    });
  });
}
