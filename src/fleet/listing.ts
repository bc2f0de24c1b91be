import type { FleetListings } from '../api/deps.js';
import { modelAllowed, type Principal } from '../auth/principal.js';
import { normalizeModelName } from '../catalog/names.js';
import type { FleetNode, NodeReport } from './registry.js';

function openAiEntry(m: { name: string; entry: Record<string, unknown>; nodes: string[] }): Record<string, unknown> {
  return {
    id: m.name,
    object: 'model',
    created: Math.floor(Date.parse(String(m.entry.modified_at)) / 1000) || 0,
    owned_by: 'corral',
    nodes: m.nodes,
  };
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The listing routes across the fleet, in each API's own shape plus the nodes that serve each model:
 * `/api/tags` lists each model once with `nodes`, `/api/ps` each running process with its `node`. Every
 * node answers alike: a model's entry is taken from the first node (by id) that has it.
 */
export function fleetListings(self: () => NodeReport, nodes: () => FleetNode[]): FleetListings {
  const gateways = (): NodeReport[] => {
    const own = self();
    const others = nodes().filter((n) => n.kind === 'gateway' && n.id !== own.id);
    return [own, ...others].sort((a, b) => (a.id < b.id ? -1 : 1));
  };
  const models = (principal: Principal | null) => {
    const merged = new Map<string, { name: string; entry: Record<string, unknown>; nodes: string[] }>();
    for (const node of gateways()) {
      for (const m of node.models) {
        if (!modelAllowed(principal, m.name)) continue;
        const seen = merged.get(m.name);
        if (seen) seen.nodes.push(node.id);
        else merged.set(m.name, { name: m.name, entry: m.tags, nodes: [node.id] });
      }
    }
    return [...merged.values()].sort(byName);
  };
  return {
    tags: (principal) => JSON.stringify({ models: models(principal).map((m) => ({ ...m.entry, nodes: m.nodes })) }),
    ps(principal) {
      const running = gateways().flatMap((node) =>
        node.loaded
          .filter((l) => modelAllowed(principal, l.name))
          .map((l) => ({ name: l.name, entry: { ...l.ps, node: node.id } })),
      );
      return JSON.stringify({ models: running.sort(byName).map((r) => r.entry) });
    },
    openAiModels: (principal) => JSON.stringify({ object: 'list', data: models(principal).map(openAiEntry) }),
    openAiModel(principal, name) {
      const wanted = normalizeModelName(name);
      const found = models(principal).find((m) => m.name === wanted);
      return found && openAiEntry(found);
    },
  };
}
