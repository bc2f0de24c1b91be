import type { CatalogModel } from '../catalog/catalog.js';
import { ModelLoadFailed } from '../errors.js';
import type { RunnerModel } from '../runner/args.js';
import { RpcRunner, type WorkerLease } from '../runner/rpc-runner.js';
import { Runner, type RunnerSpec } from '../runner/runner.js';
import type { SchedulableModel, SchedulerPolicy } from '../scheduler/types.js';
import type { FleetMembership } from './membership.js';
import type { FleetRegistry } from './registry.js';

/** An rpc-server a model may compute on; memoryBytes 0 = not registered in the fleet (unknown). */
export interface RpcWorker {
  endpoint: string;
  memoryBytes: number;
}

/** The rpc-servers registered in the fleet by `corral worker` and live now. */
export function liveWorkers(membership: FleetMembership | undefined): RpcWorker[] {
  if (!membership) return [];
  return membership
    .workers()
    .map((n) => ({ endpoint: n.worker!.endpoint, memoryBytes: n.worker!.memoryBytes }))
    .sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1));
}

/** The workers a model runs across: every live one for "auto", else the configured addresses. */
export function rpcWorkers(rpc: 'auto' | string[], live: RpcWorker[]): RpcWorker[] {
  if (rpc === 'auto') return live;
  return rpc.map((endpoint) => live.find((w) => w.endpoint === endpoint) ?? { endpoint, memoryBytes: 0 });
}

/**
 * How a model's memory need is split: in proportion to what each worker lends (workers of unknown size
 * count as the average of the known, or equal), plus what this node's own GPU memory holds (`localBytes`,
 * 0 on a CPU-only node, whose llama-server offloads every layer to the workers). Returns this node's
 * part, which is what its budget is charged, and each worker's part.
 */
export function splitNeed(
  needBytes: number,
  workers: readonly RpcWorker[],
  localBytes: number,
): { localBytes: number; shares: { endpoint: string; bytes: number; memoryBytes: number }[] } {
  if (workers.length === 0) return { localBytes: needBytes, shares: [] };
  const known = workers.filter((w) => w.memoryBytes > 0);
  const fallback = known.length ? known.reduce((n, w) => n + w.memoryBytes, 0) / known.length : 1;
  const weights = workers.map((w) => (w.memoryBytes > 0 ? w.memoryBytes : fallback));
  const local = localBytes > 0 && known.length > 0 ? localBytes : 0;
  const total = weights.reduce((n, w) => n + w, 0) + local;
  return {
    localBytes: Math.round((needBytes * local) / total),
    shares: workers.map((w, i) => ({
      endpoint: w.endpoint,
      bytes: Math.round((needBytes * weights[i]!) / total),
      memoryBytes: w.memoryBytes,
    })),
  };
}

/** A model on workers is charged to this node's budget for its own part only. */
export function rpcPlan(plan: SchedulableModel, live: RpcWorker[], localBytes: number): SchedulableModel {
  const rpc = plan.launch.rpc;
  if (rpc === undefined) return plan;
  const workers = rpcWorkers(rpc, live);
  const full = plan.memoryAt ?? (() => plan.memoryBytes);
  const local = (ctx: number): number => splitNeed(full(ctx), workers, localBytes).localBytes;
  return {
    ...plan,
    memoryBytes: local(plan.ctxSize),
    memoryAt: local,
    launch: { ...plan.launch, rpcNeedBytes: plan.memoryBytes },
  };
}

/**
 * An rpc-server serves one llama-server at a time, so two models that share a worker exclude each
 * other: one swap group per such pair ("auto" shares with every model that uses workers).
 */
export function withRpcGroups(policy: SchedulerPolicy, models: readonly CatalogModel[]): SchedulerPolicy {
  const users = models.filter((m) => m.rpc !== undefined);
  const groups = { ...policy.groups };
  for (const [i, a] of users.entries()) {
    for (const b of users.slice(i + 1)) {
      const shares = a.rpc === 'auto' || b.rpc === 'auto' || a.rpc!.some((e) => (b.rpc as string[]).includes(e));
      if (shares) groups[`rpc workers of ${a.name} and ${b.name}`] = [a.name, b.name];
    }
  }
  return users.length > 1 ? { ...policy, groups } : policy;
}

export interface LeaseParts {
  model: string;
  rpc: 'auto' | string[];
  /** The model's whole memory need, split across the workers. */
  needBytes: number;
  localBytes: number;
  /** Without a fleet only configured addresses work, and nothing is claimed. */
  fleet?: { membership: FleetMembership; registry: FleetRegistry; expiryMs: number } | undefined;
  /** How long to wait for this node's own previous model to give the workers back (an eviction). */
  handoverMs?: number;
}

const GB = 1024 ** 3;
const gb = (bytes: number): string => `${(bytes / GB).toFixed(1)} GiB`;

/** Takes a model's workers in the fleet for one start, after checking each can hold its share. */
export function workerLease(p: LeaseParts): WorkerLease {
  return {
    async acquire() {
      const workers = rpcWorkers(p.rpc, liveWorkers(p.fleet?.membership));
      if (workers.length === 0)
        throw new ModelLoadFailed(
          `model "${p.model}" runs on rpc workers ("rpc: auto"), but no worker is live in the fleet: ` +
            'start `corral worker` on the machines that lend their memory',
        );
      const { shares } = splitNeed(p.needBytes, workers, p.localBytes);
      const short = shares.find((s) => s.memoryBytes > 0 && s.bytes > s.memoryBytes);
      if (short)
        throw new ModelLoadFailed(
          `model "${p.model}" needs about ${gb(p.needBytes)} split across ${workers.length} rpc workers; ` +
            `${short.endpoint} would take ${gb(short.bytes)} but lends ${gb(short.memoryBytes)}`,
        );
      const endpoints = workers.map((w) => w.endpoint);
      if (p.fleet) await claim(p, p.fleet, endpoints);
      return endpoints;
    },
    async release() {
      if (p.fleet) await p.fleet.registry.releaseWorkers(p.fleet.membership.selfId, p.model);
    },
  };
}

async function claim(p: LeaseParts, fleet: NonNullable<LeaseParts['fleet']>, endpoints: string[]): Promise<void> {
  const self = fleet.membership.selfId;
  const deadline = Date.now() + (p.handoverMs ?? 15_000);
  for (;;) {
    const conflicts = await fleet.registry.claimWorkers(self, p.model, endpoints, fleet.expiryMs);
    if (conflicts.length === 0) return;
    // This node's model that was just evicted gives them back as its llama-server exits.
    const ours = conflicts.every((c) => c.nodeId === self);
    if (!ours || Date.now() > deadline) {
      const held = conflicts.map((c) => `${c.endpoint} (model "${c.model}" on node "${c.nodeId}")`).join(', ');
      throw new ModelLoadFailed(
        `model "${p.model}" cannot start: its rpc workers are in use by ${held}; ` +
          'an rpc-server serves one model at a time',
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The runner of a model: on its rpc workers when it has `rpc`, else an ordinary one. */
export function runnerFor(
  m: SchedulableModel,
  spec: (launch: RunnerModel) => RunnerSpec,
  lease: (parts: Pick<LeaseParts, 'model' | 'rpc' | 'needBytes'>) => WorkerLease,
): Runner {
  const rpc = m.launch.rpc;
  if (rpc === undefined) return new Runner(spec(m.launch));
  return new RpcRunner(
    spec(m.launch),
    (workers) => spec({ ...m.launch, rpcWorkers: workers }).args,
    lease({ model: m.name, rpc, needBytes: m.launch.rpcNeedBytes ?? m.memoryBytes }),
  );
}
