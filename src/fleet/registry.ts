/**
 * What the nodes of a fleet tell each other through the shared database. A node publishes a NodeReport
 * with every heartbeat; every node reads the live ones back and routes from that picture.
 */

/** One model a node's catalogue can serve. */
export interface FleetModel {
  /** Normalised catalogue name, e.g. "qwen:latest". */
  name: string;
  aliases: string[];
  digest: string;
  /** Bytes on disk. */
  size: number;
  /** The scheduler's estimate of the memory it needs once loaded. */
  needBytes: number;
  /** Its `/api/tags` entry as this node shows it, so every node lists it the same way. */
  tags: Record<string, unknown>;
}

/** One model a node has running (or starting). */
export interface FleetLoaded {
  name: string;
  state: string;
  inFlight: number;
  queued: number;
  /** Its `/api/ps` entry as this node shows it. */
  ps: Record<string, unknown>;
}

/** An rpc-server a node lends to the fleet (`corral worker`). */
export interface WorkerInfo {
  /** host:port llama-server connects to. */
  endpoint: string;
  memoryBytes: number;
  device: string;
}

export interface NodeReport {
  id: string;
  /** Random per process: two processes reporting under one id overwrite each other, which this reveals. */
  instance?: string | undefined;
  kind: 'gateway' | 'worker';
  /** Where other nodes forward requests to (a gateway), or a description (a worker). */
  url: string;
  version: string;
  models: FleetModel[];
  loaded: FleetLoaded[];
  /** The memory budget and what loaded models use of it; totalBytes 0 = no limit. */
  budget: { totalBytes: number; usedBytes: number };
  /** Requests waiting for a slot or a load, over all models. */
  queueDepth: number;
  /** Requests holding a slot, over all models. */
  inFlight: number;
  /** Busy slots over all slots of the loaded models (0..1): what Corral knows of its KV cache use. */
  kvCacheUsage: number;
  worker?: WorkerInfo | undefined;
}

/** A live node as read back: its report and when the database last heard from it. */
export interface FleetNode extends NodeReport {
  startedAt: Date;
  heartbeatAt: Date;
  /** Milliseconds since its last heartbeat, by the database's clock (no clock skew between nodes). */
  ageMs: number;
}

/** A hold on an rpc-server: one serves one llama-server at a time. */
export interface RpcClaim {
  endpoint: string;
  nodeId: string;
  model: string;
}

/** The shared state of a fleet; the PostgreSQL implementation is pg-registry.ts. */
export interface FleetRegistry {
  /** Creates the registry's tables if they are missing (idempotent, safe with nodes starting together). */
  ensureSchema(): Promise<void>;
  /** Writes this node's report and heartbeat; returns the `instance` of the report it replaced, if any. */
  publish(report: NodeReport): Promise<string | undefined>;
  /** The nodes heard from within `expiryMs`, this one included. */
  nodes(expiryMs: number): Promise<FleetNode[]>;
  /** Removes a node that stops cleanly, so others stop routing to it at once. */
  leave(id: string): Promise<void>;
  /**
   * Takes every endpoint for (`nodeId`, `model`), or none. Returns the conflicting holds (empty: all taken):
   * an endpoint held for another model, by a node heard from within `expiryMs`, is not taken over.
   */
  claimWorkers(nodeId: string, model: string, endpoints: string[], expiryMs: number): Promise<RpcClaim[]>;
  releaseWorkers(nodeId: string, model: string): Promise<void>;
  close(): Promise<void>;
}
