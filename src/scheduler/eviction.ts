/** A model that currently holds (or is acquiring) memory, as the planner sees it. */
export interface Resident {
  name: string;
  memoryBytes: number;
  lastUsed: number;
  /** Requests running, queued or waiting for its load: evicting it would break them. */
  busy: boolean;
  pinned: boolean;
}

export interface Limits {
  /** 0 = no limit. */
  maxLoadedModels: number;
  /** Bytes; 0 = no limit. */
  memoryBudget: number;
}

export interface RoomRequest {
  name: string;
  memoryBytes: number;
  /** Members of the requested model's swap groups: loading it unloads these. */
  exclusiveWith: ReadonlySet<string>;
}

export type RoomPlan =
  | { kind: 'fits'; evict: string[] }
  /** Room can be made once a busy model goes idle. */
  | { kind: 'wait'; reason: string }
  /** No amount of waiting helps (budget too small, pinned models in the way). */
  | { kind: 'never'; reason: string };

export const gb = (bytes: number): string =>
  bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;

/**
 * Decides which residents must go for `req` to load. Pure, so the policy is testable without
 * processes. Only idle, unpinned models are evicted, least recently used first, and only as many as
 * needed; nothing is evicted when the plan cannot complete yet, so a waiting load never costs an
 * idle model its process for nothing.
 */
export function planRoom(req: RoomRequest, residents: readonly Resident[], limits: Limits): RoomPlan {
  const others = residents.filter((r) => r.name !== req.name);
  if (limits.memoryBudget > 0 && req.memoryBytes > limits.memoryBudget) {
    return {
      kind: 'never',
      reason: `model "${req.name}" needs ~${gb(req.memoryBytes)} but the memory budget is ${gb(limits.memoryBudget)}`,
    };
  }
  const swapped = others.filter((r) => req.exclusiveWith.has(r.name));
  const pinnedRival = swapped.find((r) => r.pinned);
  if (pinnedRival) {
    return { kind: 'never', reason: `model "${req.name}" shares a swap group with pinned model "${pinnedRival.name}"` };
  }
  const pinned = others.filter((r) => r.pinned && !req.exclusiveWith.has(r.name));
  if (limits.maxLoadedModels > 0 && pinned.length + 1 > limits.maxLoadedModels) {
    return {
      kind: 'never',
      reason: `model "${req.name}" cannot load: ${pinned.length} pinned model(s) already use max_loaded_models (${limits.maxLoadedModels})`,
    };
  }
  const pinnedBytes = pinned.reduce((sum, r) => sum + r.memoryBytes, 0);
  if (limits.memoryBudget > 0 && pinnedBytes + req.memoryBytes > limits.memoryBudget) {
    return {
      kind: 'never',
      reason: `model "${req.name}" needs ~${gb(req.memoryBytes)} but pinned models use ${gb(pinnedBytes)} of the ${gb(limits.memoryBudget)} memory budget`,
    };
  }
  if (swapped.some((r) => r.busy))
    return { kind: 'wait', reason: `waiting for swap-group rival to finish its requests` };

  const evict = swapped.map((r) => r.name);
  const staying = others.filter((r) => !req.exclusiveWith.has(r.name));
  let count = staying.length + 1;
  let bytes = staying.reduce((sum, r) => sum + r.memoryBytes, 0) + req.memoryBytes;
  const over = (): boolean =>
    (limits.maxLoadedModels > 0 && count > limits.maxLoadedModels) ||
    (limits.memoryBudget > 0 && bytes > limits.memoryBudget);
  const idle = staying.filter((r) => !r.busy && !r.pinned).sort((a, b) => a.lastUsed - b.lastUsed);
  for (const victim of idle) {
    if (!over()) break;
    evict.push(victim.name);
    count--;
    bytes -= victim.memoryBytes;
  }
  if (over()) return { kind: 'wait', reason: `all loaded models that could make room are busy` };
  return { kind: 'fits', evict };
}

/** Other members of every swap group `name` belongs to. */
export function rivals(name: string, groups: Record<string, string[]>): Set<string> {
  const out = new Set<string>();
  for (const members of Object.values(groups)) {
    if (members.includes(name)) for (const m of members) if (m !== name) out.add(m);
  }
  return out;
}
