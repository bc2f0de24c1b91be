import { normalizeModelName } from '../catalog/names.js';
import type { FleetLoaded, FleetModel, FleetNode } from './registry.js';

/** What this node knows about the requested model, from its own catalogue and scheduler. */
export interface LocalView {
  /** Its catalogue names the model (as `name`, the canonical name). */
  known: boolean;
  /** Canonical name when known, else the requested name normalised. */
  name: string;
  /** Loaded or loading here. */
  loaded: boolean;
  needBytes: number;
  /** Budget left here; Infinity without a budget. */
  freeBytes: number;
}

export type Target = { kind: 'local' } | { kind: 'node'; node: FleetNode };

/** The model a node's catalogue serves under `name` (its canonical name or an alias), if any. */
export function nodeModel(node: FleetNode, name: string): FleetModel | undefined {
  const n = normalizeModelName(name);
  return node.models.find((m) => m.name === n || m.aliases.includes(n));
}

/** The node's running (or starting) process of that model, if any. */
export function nodeLoaded(node: FleetNode, model: string): FleetLoaded | undefined {
  return node.loaded.find((l) => l.name === model && (l.state === 'ready' || l.state === 'starting'));
}

function freeBytes(node: FleetNode): number {
  const { totalBytes, usedBytes } = node.budget;
  return totalBytes === 0 ? Number.POSITIVE_INFINITY : Math.max(0, totalBytes - usedBytes);
}

interface Candidate {
  target: Target;
  id: string;
  free: number;
  need: number;
}

/** Fits without evicting first; then the most room left; this node before others at a tie (no hop). */
function byFit(a: Candidate, b: Candidate): number {
  const fits = (c: Candidate): number => (c.free >= c.need ? 1 : 0);
  if (fits(a) !== fits(b)) return fits(b) - fits(a);
  if (a.free !== b.free) return a.free > b.free ? -1 : 1;
  if (a.target.kind !== b.target.kind) return a.target.kind === 'local' ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Where a request for a model should run, best first (later entries are the fallbacks when a node cannot
 * be reached): here when it is loaded here; else the nodes that have it loaded, least queued first; else
 * here when it fits here without evicting anything (no hop); else every node whose catalogue has it,
 * this one included, by how well its budget fits the model. `peers` are the other live gateway nodes.
 * Empty: no node of the fleet knows the model.
 */
export function rankTargets(local: LocalView, peers: readonly FleetNode[]): Target[] {
  if (local.loaded) return [{ kind: 'local' }];
  const loaded: { node: FleetNode; queue: number }[] = [];
  const fits: Candidate[] = [];
  if (local.known) fits.push({ target: { kind: 'local' }, id: '', free: local.freeBytes, need: local.needBytes });
  for (const node of peers) {
    const model = nodeModel(node, local.name);
    if (!model) continue;
    const running = nodeLoaded(node, model.name);
    if (running) loaded.push({ node, queue: running.inFlight + running.queued });
    else fits.push({ target: { kind: 'node', node }, id: node.id, free: freeBytes(node), need: model.needBytes });
  }
  if (loaded.length === 0 && local.known && local.freeBytes >= local.needBytes) return [{ kind: 'local' }];
  loaded.sort((a, b) => a.queue - b.queue || a.node.queueDepth - b.node.queueDepth || (a.node.id < b.node.id ? -1 : 1));
  return [...loaded.map((l): Target => ({ kind: 'node', node: l.node })), ...fits.sort(byFit).map((c) => c.target)];
}
